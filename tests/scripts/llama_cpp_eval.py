"""Perplexity and KL divergence with llama.cpp (llama-cpp-python 0.3.36), computed the way
llama.cpp's tools/perplexity does: tokenize the whole text with BOS as the vocabulary says,
chunks of n_ctx tokens (the tail is dropped), each decoded from an empty cache with its first
token replaced by BOS, the logits at positions n_ctx/2 .. n_ctx-2 scoring the next token.
Used by tests/scripts/gen_perplexity_ref.py and bench/quant_quality.py.
"""
import contextlib, os, sys
import numpy as np


@contextlib.contextmanager
def quiet():
    """llama.cpp logs to fd 2 from C; silence it."""
    fd = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
        os.close(null)


def load(path, n_ctx, n_threads=2, n_batch=None, flash_attn=False):
    from llama_cpp import Llama
    with quiet():
        return Llama(model_path=path, n_ctx=n_ctx, n_batch=n_batch or n_ctx, n_ubatch=n_batch or n_ctx,
                     logits_all=True, n_threads=n_threads, n_threads_batch=n_threads, verbose=False,
                     flash_attn=flash_attn)


def tokens(llm, text):
    return llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)


def chunk_logits(llm, toks, chunk, n_ctx):
    """float32 logits [n_ctx - 1 - n_ctx//2, n_vocab] of the scored positions of one chunk."""
    start = chunk * n_ctx
    batch = list(toks[start:start + n_ctx])
    if llm._model.add_bos_token() and llm.token_bos() >= 0:
        batch[0] = llm.token_bos()
    llm.reset()
    with quiet():
        llm.eval(batch)
    first = n_ctx // 2
    return np.array(llm.scores[first:n_ctx - 1], dtype=np.float32)


def log_softmax(logits):
    x = logits.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def perplexity(llm, toks, n_ctx, max_chunks=-1, base_logprobs=None, keep_logprobs=False):
    """Returns dict(ppl, ppl_err, n_chunks, n_scored, nll: per-token negative log-likelihoods)
    and, with base_logprobs (list of per-chunk float64 log-prob arrays), the mean KL divergence
    of this model from the base; keep_logprobs adds those arrays ("logprobs": ~50 MB a chunk)."""
    n_chunks = len(toks) // n_ctx
    if max_chunks >= 0:
        n_chunks = min(n_chunks, max_chunks)
    first = n_ctx // 2
    nll, kl, lps = [], [], []
    for c in range(n_chunks):
        lp = log_softmax(chunk_logits(llm, toks, c, n_ctx))
        target = np.array(toks[c * n_ctx + first + 1:c * n_ctx + n_ctx])
        nll.extend((-lp[np.arange(len(target)), target]).tolist())
        if base_logprobs is not None:
            b = base_logprobs[c]
            kl.extend((np.exp(b) * (b - lp)).sum(axis=-1).tolist())
        if keep_logprobs:
            lps.append(lp)
    nll = np.array(nll)
    mean = nll.mean()
    err = np.sqrt(max(0.0, (nll ** 2).mean() - mean ** 2) / (len(nll) - 1))
    out = {"ppl": float(np.exp(mean)), "ppl_err": float(np.exp(mean) * err), "n_chunks": n_chunks,
           "n_scored": int(len(nll)), "nll": nll}
    if keep_logprobs:
        out["logprobs"] = lps
    if base_logprobs is not None:
        out["kl"] = float(np.mean(kl))
    return out
