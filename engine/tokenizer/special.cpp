// Special-token partitioning. llama.cpp scans the text once per special token (longest first),
// which costs (number of special tokens) x (text length); Gemma has ~6400 of them. We get the
// same result from one trie walk per position: collect every occurrence, then let tokens claim
// occurrences in priority order, skipping any that overlap text already claimed.
#include <algorithm>
#include <numeric>

#include "tokenizer_impl.h"

namespace osprey::tok {

int32_t SpecialMatcher::child(int32_t node, uint8_t b) const {
  const auto& kids = nodes_[node].kids;
  auto it = std::lower_bound(kids.begin(), kids.end(), b,
                             [](const std::pair<uint8_t, int32_t>& k, uint8_t v) { return k.first < v; });
  return (it != kids.end() && it->first == b) ? it->second : -1;
}

void SpecialMatcher::build(const std::vector<std::string>& texts, const std::vector<int32_t>& ids,
                           const std::vector<bool>& always) {
  nodes_.assign(1, Node{});
  by_rank_.clear();
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  // Longest text first; ties by id so the order is deterministic.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const size_t la = texts[ids[a]].size(), lb = texts[ids[b]].size();
    return la != lb ? la > lb : ids[a] < ids[b];
  });
  for (size_t k : order) {
    const std::string& t = texts[ids[k]];
    if (t.empty()) continue;
    int32_t node = 0;
    for (char ch : t) {
      const uint8_t b = static_cast<uint8_t>(ch);
      int32_t next = child(node, b);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_.push_back(Node{});
        auto& kids = nodes_[node].kids;
        auto it = std::lower_bound(kids.begin(), kids.end(), b,
                                   [](const std::pair<uint8_t, int32_t>& p, uint8_t v) { return p.first < v; });
        kids.insert(it, {b, next});
      }
      node = next;
    }
    // Two special tokens with the same text: the first in priority order claims everything.
    if (nodes_[node].rank >= 0) continue;
    nodes_[node].rank = static_cast<int32_t>(by_rank_.size());
    by_rank_.push_back({ids[k], static_cast<uint32_t>(t.size()), static_cast<bool>(always[k])});
  }
}

void SpecialMatcher::partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const {
  out.clear();
  const uint32_t n = static_cast<uint32_t>(text.size());
  if (n == 0) return;

  std::vector<std::pair<int32_t, uint32_t>> occ;  // (rank, position), positions ascending
  if (nodes_.size() > 1) {
    for (uint32_t pos = 0; pos < n; ++pos) {
      int32_t node = 0;
      for (uint32_t i = pos; i < n; ++i) {
        node = child(node, static_cast<uint8_t>(text[i]));
        if (node < 0) break;
        const int32_t r = nodes_[node].rank;
        if (r >= 0 && (parse_special || by_rank_[r].always)) occ.emplace_back(r, pos);
      }
    }
  }
  if (occ.empty()) {
    out.push_back({-1, 0, n});
    return;
  }
  // Order by rank keeping positions ascending within a rank: a counting sort, because runs of
  // whitespace can match dozens of whitespace tokens at every position.
  std::vector<uint32_t> first(by_rank_.size() + 1, 0);
  for (const auto& o : occ) ++first[o.first + 1];
  for (size_t r = 1; r < first.size(); ++r) first[r] += first[r - 1];
  std::vector<uint32_t> sorted_pos(occ.size());
  {
    std::vector<uint32_t> fill(first.begin(), first.end() - 1);
    for (const auto& o : occ) sorted_pos[fill[o.first]++] = o.second;
  }

  std::vector<uint8_t> claimed(n, 0);
  std::vector<int32_t> start_rank(n, -1);
  for (size_t r = 0; r + 1 < first.size(); ++r) {
    const uint32_t len = by_rank_[r].len;
    for (uint32_t k = first[r]; k < first[r + 1]; ++k) {
      const uint32_t pos = sorted_pos[k];
      if (std::find(claimed.begin() + pos, claimed.begin() + pos + len, 1) != claimed.begin() + pos + len)
        continue;  // overlaps text an earlier token (or an earlier match of this one) took
      std::fill(claimed.begin() + pos, claimed.begin() + pos + len, 1);
      start_rank[pos] = static_cast<int32_t>(r);
    }
  }

  uint32_t raw = 0;
  for (uint32_t pos = 0; pos < n;) {
    if (start_rank[pos] < 0) {
      ++pos;
      continue;
    }
    if (raw < pos) out.push_back({-1, raw, pos});
    const Entry& e = by_rank_[start_rank[pos]];
    out.push_back({e.id, pos, pos + e.len});
    pos += e.len;
    raw = pos;
  }
  if (raw < n) out.push_back({-1, raw, n});
}

}  // namespace osprey::tok
