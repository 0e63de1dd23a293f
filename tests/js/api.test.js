// The issue list's paging (assets/js/api.js): the next page's cursor read from a Link header.
import assert from "node:assert/strict";
import test from "node:test";

const { nextCursor } = await import("../../assets/js/api.js");

test("the next page's cursor comes from the Link header's rel=next with results", () => {
  const next = '</api/v1/projects/1/issues?limit=100&cursor=last_seen%3A17%3A4>; rel="next"; results="true"; cursor="last_seen:17:4"';
  assert.equal(nextCursor(next), "last_seen:17:4");
  const previous = '</api/v1/projects/1/issues?cursor=a>; rel="previous"; results="false"; cursor="a"';
  assert.equal(nextCursor(`${previous}, ${next}`), "last_seen:17:4");
  assert.equal(nextCursor(previous), null);
  assert.equal(nextCursor(next.replace('results="true"', 'results="false"')), null);
  assert.equal(nextCursor(null), null);
  assert.equal(nextCursor(""), null);
});
