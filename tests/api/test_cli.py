"""The CLI as a client of the server: create -f Modelfile, list, show, run NAME, ps, cp, rm, stop."""
import os
import subprocess

from conftest import MODEL


def cli(server, *args, stdin=None):
    env = dict(os.environ, OSPREY_HOST=f"127.0.0.1:{server.port}")
    return subprocess.run([os.environ["OSPREY_BIN"], *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=300)


def test_cli_round_trip(server, tmp_path):
    mf = tmp_path / "Modelfile"
    mf.write_text(f"FROM {os.environ['OSPREY_TEST_GGUF']}\nSYSTEM \"\"\"You are a pirate.\"\"\"\n"
                  "PARAMETER temperature 0\nPARAMETER num_predict 6\n")
    r = cli(server, "create", "pirate", "-f", str(mf))
    assert r.returncode == 0, r.stderr
    assert "success" in r.stderr
    r = cli(server, "list")
    assert r.returncode == 0 and "pirate:latest" in r.stdout and MODEL + ":latest" in r.stdout
    r = cli(server, "show", "pirate")
    assert r.returncode == 0 and "llama" in r.stdout and "You are a pirate." in r.stdout
    r = cli(server, "run", "pirate", "Who are you?")
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    r = cli(server, "run", "pirate", stdin="Hi\n")
    assert r.returncode == 0 and r.stdout.strip()
    assert "pirate:latest" in cli(server, "ps").stdout
    assert cli(server, "stop", "pirate").returncode == 0
    assert cli(server, "cp", "pirate", "pirate2").returncode == 0
    assert cli(server, "rm", "pirate2", "pirate").returncode == 0
    assert "pirate" not in cli(server, "list").stdout
    r = cli(server, "run", "nope")
    assert r.returncode != 0 and "not found" in r.stderr


def test_cli_no_server(tmp_path):
    from conftest import free_port
    env = dict(os.environ, OSPREY_HOST=f"127.0.0.1:{free_port()}")
    r = subprocess.run([os.environ["OSPREY_BIN"], "list"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "could not connect" in r.stderr
