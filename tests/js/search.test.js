// The dashboard's search parser and matcher (assets/js/search.js) on the cases the
// server's parser is tested on too (tests/search_cases.json, src/model/search.rs).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import test from "node:test";
import {
  DEFAULT_QUERY,
  MAX_QUERY_CHARS,
  MAX_TERMS,
  compareIssues,
  localFilter,
  parseQuery,
  sortOf,
} from "../../assets/js/search.js";

const { cases } = JSON.parse(readFileSync(new URL("../search_cases.json", import.meta.url), "utf8"));

test("the shared cases parse as the server parses them", () => {
  assert.ok(cases.length >= 40);
  for (const c of cases) {
    const expected = "error" in c ? { error: c.error } : { terms: c.terms };
    assert.deepEqual(parseQuery(c.query), expected, JSON.stringify(c.query));
  }
});

test("the shared cases' issues match as the server matches them", () => {
  let judged = 0;
  for (const c of cases) {
    const filter = localFilter(c.query);
    for (const { matches, ...issue } of c.issues ?? []) {
      assert.equal(filter === null ? null : filter(issue), matches, `${JSON.stringify(c.query)} on ${JSON.stringify(issue)}`);
      judged++;
    }
  }
  assert.ok(judged >= 30, `${judged} issues judged`);
});

test("a query the server refuses matches nothing here", () => {
  const filter = localFilter("is:sleeping");
  assert.ok(filter !== null);
  assert.equal(filter({ title: "a", status: "unresolved" }), false);
});

test("queries are bounded as on the server", () => {
  const words = (n) => Array(n).fill("w").join(" ");
  assert.equal(parseQuery(words(MAX_TERMS)).terms.length, MAX_TERMS);
  const long = "é".repeat(MAX_QUERY_CHARS);
  assert.deepEqual(parseQuery(long), { terms: [{ kind: "text", value: long }] });
  assert.deepEqual(parseQuery(`${long}x`), {
    error: "the query is 1025 characters long: a query has at most 1024",
  });
  // Characters, not UTF-16 units: 1,024 emoji are one query.
  assert.equal(parseQuery("😀".repeat(MAX_QUERY_CHARS)).terms.length, 1);
});

test("the default search keeps unresolved issues", () => {
  const filter = localFilter(DEFAULT_QUERY);
  assert.equal(filter?.({ status: "unresolved" }), true);
  assert.equal(filter?.({ status: "resolved" }), false);
});

test("issues sort as the server sorts them, ties newest id first", () => {
  const issues = [
    { id: 1, event_count: 5, first_seen: "2026-01-01T00:00:00Z", last_seen: "2026-01-03T00:00:00Z" },
    { id: 2, event_count: 9, first_seen: "2026-01-02T00:00:00Z", last_seen: "2026-01-03T00:00:00Z" },
    { id: 3, event_count: 5, first_seen: "2026-01-01T00:00:00Z", last_seen: "2026-01-02T00:00:00Z" },
  ];
  const ids = (sort) => [...issues].sort(compareIssues(sort)).map((i) => i.id);
  assert.deepEqual(ids("last_seen"), [2, 1, 3]);
  assert.deepEqual(ids("first_seen"), [2, 3, 1]);
  assert.deepEqual(ids("event_count"), [2, 3, 1]);
  assert.equal(sortOf("priority"), "last_seen");
  assert.equal(sortOf("event_count"), "event_count");
});
