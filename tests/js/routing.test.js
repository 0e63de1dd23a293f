// The address fragment (assets/js/routing.js): what a link asks for, and the address of a view.
import assert from "node:assert/strict";
import test from "node:test";
import { parseFragment, validId, viewHash } from "../../assets/js/routing.js";

test("an empty fragment asks for nothing", () => {
  assert.deepEqual(parseFragment(""), {
    any: false,
    project: "",
    token: "",
    query: "is:unresolved",
    sort: "last_seen",
    issue: null,
    event: "",
  });
});

test("a link with everything", () => {
  const f = parseFragment("#project=12&token=t%2Bk&query=level%3Aerror+timeout&sort=event_count&issue=7&event=ab12");
  assert.deepEqual(f, {
    any: true,
    project: "12",
    token: "t+k",
    query: "level:error timeout",
    sort: "event_count",
    issue: 7,
    event: "ab12",
  });
});

test("odd values fall back: an unknown sort, an issue that is no id, an empty query", () => {
  const f = parseFragment("project=1&sort=priority&issue=0&query=");
  assert.equal(f.sort, "last_seen");
  assert.equal(f.issue, null);
  assert.equal(f.query, "");
  assert.equal(parseFragment("#issue=12x").issue, null);
});

test("ids are positive whole numbers of at most 19 digits", () => {
  assert.ok(validId("1"));
  assert.ok(validId("9".repeat(19)));
  for (const bad of ["", "0", "01", "-1", "1.5", "9".repeat(20), " 1"]) assert.ok(!validId(bad), bad);
});

test("a view's address names only what differs from the defaults, never the token", () => {
  assert.equal(viewHash({ project: "3", query: "is:unresolved", sort: "last_seen" }), "#project=3");
  assert.equal(
    viewHash({ project: "3", query: "browser:\"Chrome 120\"", sort: "first_seen", issue: 9, event: "e1" }),
    "#project=3&query=browser%3A%22Chrome+120%22&sort=first_seen&issue=9&event=e1",
  );
  // The address reads back as the view it names.
  const back = parseFragment(viewHash({ project: "3", query: "a&b=c", sort: "event_count", issue: 4 }));
  assert.deepEqual([back.project, back.query, back.sort, back.issue, back.token], ["3", "a&b=c", "event_count", 4, ""]);
});
