// The dashboard's pure helpers: formatting (assets/js/format.js), the feed's filters
// (filters.js) and the per-minute counts of the charts (chart.js).
import assert from "node:assert/strict";
import test from "node:test";

process.env.TZ = "UTC"; // local times below are UTC ones

const { levelOf, plural, shortTime, severity, text, when } = await import("../../assets/js/format.js");
const { describe, filterLabel, matches, sameFilters, wantedFilters } = await import("../../assets/js/filters.js");
const { bump, columns, minuteOf, minutesFrom, MINUTE } = await import("../../assets/js/chart.js");

test("levels: unknown ones show as error and rank as debug", () => {
  assert.equal(levelOf("warning"), "warning");
  assert.equal(levelOf("loud"), "error");
  assert.equal(levelOf(undefined), "error");
  assert.deepEqual(["debug", "info", "warning", "error", "fatal", "loud"].map(severity), [0, 1, 2, 3, 4, 0]);
});

test("plural, times and values as text", () => {
  assert.equal(plural(1, "event", "events"), "1 event");
  assert.equal(plural(0, "event", "events"), "0 events");
  const today = new Date("2026-03-04T12:00:00Z");
  assert.equal(shortTime("2026-03-04T09:05:07Z", today), "09:05:07");
  assert.equal(shortTime("2026-03-03T23:59:59Z", today), "2026-03-03 23:59:59");
  assert.equal(shortTime("not a time", today), "not a time");
  assert.equal(shortTime(undefined, today), "");
  assert.equal(when(1_700_000_000.25), "2023-11-14 22:13:20.250");
  assert.equal(when("2026-03-04T09:05:07.5Z"), "2026-03-04 09:05:07.500");
  assert.equal(when("soon"), "soon");
  assert.equal(text("as is"), "as is");
  assert.equal(text({ a: [1] }), '{\n  "a": [\n    1\n  ]\n}');
  assert.equal(text(undefined), "");
});

test("the filter controls as a subscribe message, and back", () => {
  assert.deepEqual(wantedFilters("", "  "), {});
  assert.deepEqual(wantedFilters("error", " staging "), { level: "error", environment: "staging" });
  assert.deepEqual(wantedFilters("min:warning", ""), { min_level: "warning" });
  // The server confirms with lists.
  assert.deepEqual(describe({ min_level: ["warning"], environment: ["a", "b"] }), { level: "min:warning", environment: "a,b" });
  assert.ok(sameFilters({ level: "error" }, { level: ["error"] }));
  assert.ok(!sameFilters({ level: "error" }, { min_level: ["error"] }));
  assert.equal(filterLabel({}, false), "all events");
  assert.equal(filterLabel({ min_level: ["error"], environment: ["prod"] }, false), "filtered: error or worse · env prod");
  assert.equal(filterLabel({ level: ["info"] }, false), "filtered: level info");
  assert.equal(filterLabel({ level: ["info"] }, true), "applying filters…");
});

test("an event passes the filters as the server lets it through", () => {
  const event = { level: "warning", environment: "staging" };
  assert.ok(matches(event, {}));
  assert.ok(matches(event, { level: ["warning", "error"] }));
  assert.ok(!matches(event, { level: "error" }));
  assert.ok(matches(event, { min_level: ["warning"] }));
  assert.ok(!matches(event, { min_level: "error" }));
  assert.ok(matches(event, { environment: ["staging"] }));
  assert.ok(!matches(event, { environment: "production" }));
  assert.ok(matches(event, { level: [], environment: [] }));
});

test("per-minute counts: the server's minutes, live events, the last 30 minutes", () => {
  const now = minuteOf(Date.parse("2026-03-04T12:00:30Z"));
  assert.equal(now * MINUTE, Date.parse("2026-03-04T12:00:00Z"));
  const minutes = minutesFrom([
    { start: now * MINUTE, total: 3, levels: { error: 2, loud: 1 } },
    { start: (now - 1) * MINUTE, total: 0, levels: {} },
    { start: (now - 40) * MINUTE, total: 1, levels: { info: 1 } },
  ]);
  assert.deepEqual([...minutes.keys()], [now, now - 40]);
  assert.deepEqual(minutes.get(now), { error: 3 }); // an unknown level counts as error
  bump(minutes, now, "fatal");
  bump(minutes, now - 2, "debug");
  const chart = columns(minutes, now);
  assert.equal(chart.columns.length, 30);
  assert.equal(chart.columns[29].minute, now);
  assert.deepEqual(chart.columns[29].bucket, { error: 3, fatal: 1 });
  assert.equal(chart.peak, 4);
  assert.equal(chart.total, 5);
  assert.ok(!minutes.has(now - 40), "a minute older than the chart is dropped");
});
