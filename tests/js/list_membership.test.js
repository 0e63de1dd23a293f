// Which issues an issue list keeps as the stream reports them (assets/js/search.js):
// `membership` (in, out, or only the server can say), the plain is:unresolved list whose
// size is the unresolved count, and the "regressed" mark's window.
import assert from "node:assert/strict";
import test from "node:test";
import { REGRESSED_MS, isRegressed, isUnresolvedOnly, membership } from "../../assets/js/search.js";

const resolved = { title: "TypeError: x", culprit: "app.js in pay", status: "resolved", level: "error" };
const open = { ...resolved, status: "unresolved" };

test("a status or level term the page can judge decides, whatever the event terms", () => {
  assert.equal(membership("is:unresolved")(resolved), false);
  assert.equal(membership("is:unresolved")(open), true);
  assert.equal(membership("is:unresolved browser:Chrome")(resolved), false, "out: the status fails");
  assert.equal(membership("is:unresolved browser:Chrome")(open), null, "only the server knows the tag");
  assert.equal(membership("level:fatal release:1.0")(open), false);
  assert.equal(membership("typeerror")(open), true);
  assert.equal(membership("")(resolved), true, "no terms: every issue");
  assert.equal(membership("is:sleeping")(open), false, "a query the server refuses matches nothing");
});

test("only is:unresolved alone is the unresolved count", () => {
  assert.ok(isUnresolvedOnly("is:unresolved"));
  assert.ok(isUnresolvedOnly("  is:unresolved "));
  assert.ok(!isUnresolvedOnly("is:unresolved level:error"));
  assert.ok(!isUnresolvedOnly(""));
  assert.ok(!isUnresolvedOnly("is:resolved"));
});

test("the regressed mark: unresolved, regressed less than 7 days ago", () => {
  const at = "2026-12-01T10:00:00.000Z";
  const t = Date.parse(at);
  assert.ok(isRegressed({ status: "unresolved", regressed_at: at }, t + 1000));
  assert.ok(!isRegressed({ status: "unresolved", regressed_at: at }, t + REGRESSED_MS));
  assert.ok(!isRegressed({ status: "resolved", regressed_at: at }, t));
  assert.ok(!isRegressed({ status: "unresolved", regressed_at: null }, t));
  assert.ok(!isRegressed({ status: "unresolved" }, t));
});
