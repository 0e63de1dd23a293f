// The settings page's pure parts (assets/js/setup.js, and its address in routing.js): the
// setup snippets made from a DSN, the texts of a test delivery, the members' rows.
import assert from "node:assert/strict";
import test from "node:test";
import { parseFragment, settingsHash, wantsSettings } from "../../assets/js/routing.js";
import { memberRows, parseDsn, snippets, testResult, triggerWords } from "../../assets/js/setup.js";

const DSN = "http://0123456789abcdef0123456789abcdef@127.0.0.1:8080/7";

test("a settings page has an address of its own, read back as its project", () => {
  assert.equal(settingsHash("7"), "#project=7&view=settings");
  assert.ok(wantsSettings(settingsHash("7")));
  assert.equal(parseFragment(settingsHash("7")).project, "7");
  assert.ok(!wantsSettings("#project=7"));
  assert.ok(!wantsSettings("#project=7&issue=3"));
});

test("a DSN reads as the server, the ingest key and the project", () => {
  assert.deepEqual(parseDsn(DSN), { base: "http://127.0.0.1:8080", key: "0123456789abcdef0123456789abcdef", project: "7" });
  assert.deepEqual(parseDsn("https://k@errors.example.com/mesher/12"), {
    base: "https://errors.example.com/mesher",
    key: "k",
    project: "12",
  });
  for (const bad of ["", "not a url", "http://127.0.0.1/7", "http://k@h/x", "ftp://k@h/1"]) assert.equal(parseDsn(bad), null, bad);
});

test("every snippet carries the project's real DSN", () => {
  const list = snippets(DSN);
  assert.deepEqual(list.map((s) => s.id), ["python", "browser", "node", "curl"]);
  const [python, browser, node, curl] = list;
  assert.match(python.install, /pip install sentry-sdk/);
  assert.ok(python.code.includes(`sentry_sdk.init(dsn="${DSN}")`), python.code);
  assert.match(browser.install, /@sentry\/browser/);
  assert.ok(browser.code.includes(`Sentry.init({ dsn: "${DSN}" })`), browser.code);
  assert.match(node.install, /@sentry\/node/);
  assert.ok(node.code.includes(`require("@sentry/node")`) && node.code.includes(`"${DSN}"`), node.code);
  assert.ok(curl.code.includes("'http://127.0.0.1:8080/api/v1/events'"), curl.code);
  assert.ok(curl.code.includes("'Authorization: Bearer 0123456789abcdef0123456789abcdef'"), curl.code);
  // A DSN that is not one: no curl line made of guesses.
  assert.deepEqual(snippets("nonsense").map((s) => s.id), ["python", "browser", "node"]);
  // Quotes cannot break out of the code.
  assert.ok(snippets('http://k@h/1"); evil("').every((s) => !s.code.includes('evil("")')));
});

test("a test delivery's answer in words", () => {
  assert.deepEqual(testResult(200, { status: 204 }), { ok: true, text: "Delivered: the target answered 204." });
  assert.deepEqual(testResult(502, { error: "the target answered 500" }), {
    ok: false,
    text: "Not delivered: the target answered 500.",
  });
  assert.deepEqual(testResult(502, { error: "forbidden address: 10.0.0.1 is 10.0.0.1, private" }).ok, false);
  assert.deepEqual(testResult(403, null, "you are not a member of project 1"), {
    ok: false,
    text: "Not delivered: you are not a member of project 1.",
  });
  assert.equal(testResult(undefined, null, "Failed to fetch").text, "Not sent: cannot reach Mesher (Failed to fetch).");
  assert.equal(triggerWords(["new", "regressed"]), "new, regressed");
  assert.equal(triggerWords([]), "nothing");
});

test("members are listed by e-mail, malformed entries left out", () => {
  assert.deepEqual(memberRows([{ email: "b@x.io", admin: false }, { email: "a@x.io", admin: true }, { id: 3 }, null]), [
    { email: "a@x.io", admin: true },
    { email: "b@x.io", admin: false },
  ]);
  assert.deepEqual(memberRows(undefined), []);
});
