// Accounts as the page shows them (assets/js/people.js): sign-in errors, waits in words,
// the projects overview's rows.
import assert from "node:assert/strict";
import test from "node:test";

const { waitWords, signInError, projectRows } = await import("../../assets/js/people.js");

test("a wait reads in seconds below a minute, else in whole minutes rounded up", () => {
  assert.equal(waitWords(1), "1 second");
  assert.equal(waitWords(0), "1 second");
  assert.equal(waitWords(45), "45 seconds");
  assert.equal(waitWords(60), "1 minute");
  assert.equal(waitWords(61), "2 minutes");
  assert.equal(waitWords(900), "15 minutes");
  assert.equal(waitWords(Number.NaN), "1 second");
});

test("a failed sign-in shows the server's message, or how long a 429 must wait", () => {
  assert.equal(signInError(401, "wrong e-mail or password"), "Wrong e-mail or password.");
  assert.equal(
    signInError(429, "too many failed sign-ins", "754"),
    "Too many failed sign-ins for this e-mail: try again in 13 minutes.",
  );
  assert.equal(signInError(429, "x", "30"), "Too many failed sign-ins for this e-mail: try again in 30 seconds.");
  assert.equal(signInError(429, "x", ""), "Too many failed sign-ins for this e-mail: try again later.");
  assert.equal(signInError(400, ""), "The server answered 400.");
  assert.equal(signInError(undefined, "Failed to fetch"), "Cannot reach the server: Failed to fetch.");
});

test("the overview lists well-formed projects by name, each linking to its live view", () => {
  const rows = projectRows([
    { id: 2, name: "web", unresolved: 3 },
    { id: 1, name: "api", unresolved: 0, dsn: "http://k@h/1" },
    { id: "3", name: "bad id" },
    { id: 4 },
    null,
    { id: 5, name: "neg", unresolved: -1 },
  ]);
  assert.deepEqual(rows, [
    { id: "1", name: "api", unresolved: 0, hash: "#project=1" },
    { id: "5", name: "neg", unresolved: 0, hash: "#project=5" },
    { id: "4", name: "project 4", unresolved: 0, hash: "#project=4" },
    { id: "2", name: "web", unresolved: 3, hash: "#project=2" },
  ]);
  assert.deepEqual(projectRows(undefined), []);
  assert.deepEqual(projectRows({}), []);
});
