#include "unicode.h"

#include <array>

namespace osprey::tok {

uint8_t cp_flags(uint32_t cp) {
  // ASCII dominates real text; answer it from a small table built from the big one.
  static const std::array<uint8_t, 128> ascii = [] {
    std::array<uint8_t, 128> a{};
    size_t r = 0;
    for (uint32_t c = 0; c < 128; ++c) {
      while (r + 1 < kCpRangeCount && kCpRanges[r + 1].first <= c) ++r;
      a[c] = kCpRanges[r].flags;
    }
    return a;
  }();
  if (cp < 128) return ascii[cp];
  if (cp > 0x10FFFF) return 0;
  size_t lo = 0, hi = kCpRangeCount;  // find the last range with first <= cp
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (kCpRanges[mid].first <= cp) lo = mid; else hi = mid;
  }
  return kCpRanges[lo].flags;
}

std::vector<uint32_t> decode_utf8_lossy(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  const size_t n = s.size();
  auto cont = [&](size_t i) { return (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80; };
  size_t i = 0;
  while (i < n) {
    const uint8_t b = static_cast<uint8_t>(s[i]);
    uint32_t cp = 0xFFFD;
    size_t len = 1;
    if (b < 0x80) {
      cp = b;
    } else if ((b & 0x40) == 0) {
      // stray continuation byte: invalid
    } else if ((b & 0x20) == 0) {
      if (i + 1 < n && cont(i + 1)) {
        cp = ((b & 0x1Fu) << 6) | (s[i + 1] & 0x3F);
        len = 2;
      }
    } else if ((b & 0x10) == 0) {
      if (i + 2 < n && cont(i + 1) && cont(i + 2)) {
        cp = ((b & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3F);
        len = 3;
      }
    } else if ((b & 0x08) == 0) {
      if (i + 3 < n && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
        uint32_t v = ((b & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
                     (s[i + 3] & 0x3F);
        // Beyond U+10FFFF there is no UTF-8 to re-encode it as; treat the lead byte as invalid.
        if (v <= 0x10FFFF) {
          cp = v;
          len = 4;
        }
      }
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0x10FFFF) {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    append_utf8(out, 0xFFFD);
  }
}

namespace {

// GPT-2's table: printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in
// byte order, so that every byte has a visible, non-space stand-in.
struct ByteMap {
  std::array<std::string, 256> to_utf8;
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> from_cp{};  // codepoints used are all < 0x100 + 68
  ByteMap() {
    from_cp.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
      to_cp[b] = cp;
      append_utf8(to_utf8[b], cp);
      from_cp[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_map().to_utf8[b]; }

int unicode_to_byte(uint32_t cp) {
  const ByteMap& m = byte_map();
  return cp < m.from_cp.size() ? m.from_cp[cp] : -1;
}

size_t utf8_complete_prefix(std::string_view s) {
  const size_t n = s.size();
  // A pending sequence starts at most 3 bytes before the end.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t b = static_cast<uint8_t>(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation: keep looking for its lead
    size_t need = 0;
    if (b >= 0xC2 && b <= 0xDF) need = 2;
    else if (b >= 0xE0 && b <= 0xEF) need = 3;
    else if (b >= 0xF0 && b <= 0xF4) need = 4;
    // ASCII or a byte that can never start a sequence: nothing to wait for.
    return (need > back) ? n - back : n;
  }
  return n;
}

}  // namespace osprey::tok
