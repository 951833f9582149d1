// Units of the HTTP front end that the black-box API suite cannot reach directly: Go-style
// duration parsing, host checks, origin patterns (tool-call extraction: test_reply_parse).
#include <gtest/gtest.h>

#include "server/http_util.h"

using namespace osprey::server;

TEST(Durations, GoSyntax) {
  int64_t ns = 0;
  std::string err;
  ASSERT_TRUE(parse_go_duration("1h30m", &ns, &err));
  EXPECT_EQ(ns, 5400LL * 1000000000);
  ASSERT_TRUE(parse_go_duration("300ms", &ns, &err));
  EXPECT_EQ(ns, 300000000);
  ASSERT_TRUE(parse_go_duration("-1m", &ns, &err));
  EXPECT_LT(ns, 0);
  EXPECT_FALSE(parse_go_duration("3600", &ns, &err));
  EXPECT_EQ(err, "time: missing unit in duration \"3600\"");
  EXPECT_FALSE(parse_go_duration("5x", &ns, &err));
  EXPECT_EQ(parse_keep_alive(json(60)), 60LL * 1000000000);
  EXPECT_LT(parse_keep_alive(json(-1)), 0);
  EXPECT_THROW(parse_keep_alive(json(true)), HttpError);
}

TEST(Guards, HostsAndOrigins) {
  EXPECT_TRUE(host_allowed("localhost:11434"));
  EXPECT_TRUE(host_allowed("127.0.0.1:11434"));
  EXPECT_TRUE(host_allowed("[::1]:11434"));
  EXPECT_TRUE(host_allowed("192.168.1.5"));
  EXPECT_TRUE(host_allowed("foo.localhost"));
  EXPECT_FALSE(host_allowed("evil.example"));
  EXPECT_FALSE(host_allowed("8.8.8.8:80"));
  OriginPolicy none("");
  EXPECT_TRUE(none.allowed("http://localhost:3000"));
  EXPECT_TRUE(none.allowed("vscode-webview://abc"));
  EXPECT_FALSE(none.allowed("https://evil.example"));
  EXPECT_FALSE(none.allowed("chrome-extension://abc"));
  OriginPolicy some("https://*.example.com, chrome-extension://abc");
  EXPECT_TRUE(some.allowed("https://app.example.com"));
  EXPECT_TRUE(some.allowed("chrome-extension://abc"));
  EXPECT_TRUE(OriginPolicy("*").allowed("https://anything"));
}

TEST(Decoding, GoSemantics) {
  EXPECT_THROW(decode_body("", "GenerateRequest"), HttpError);
  try {
    decode_body("{\"model\":", "GenerateRequest");
    FAIL();
  } catch (const HttpError& e) {
    EXPECT_EQ(e.message, "unexpected EOF");
  }
  const json j = decode_body("{\"Model\":\"x\",\"STREAM\":false}", "GenerateRequest");
  EXPECT_EQ(j["model"], "x");
  try {
    get_bool(j, "model", "GenerateRequest");
    FAIL();
  } catch (const HttpError& e) {
    EXPECT_EQ(e.message, "json: cannot unmarshal string into Go struct field GenerateRequest.model of type bool");
  }
  EXPECT_TRUE(decode_body("null", "GenerateRequest").empty());
  std::string host;
  int port = 0;
  parse_host_env("0.0.0.0:8080", &host, &port);
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 8080);
  parse_host_env(":9000", &host, &port);
  EXPECT_EQ(port, 9000);
  parse_host_env("http://example.com", &host, &port);
  EXPECT_EQ(port, 80);
}
