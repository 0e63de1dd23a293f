// The issue view's use of the event answer's mapped frames (assets/event.js, SPEC §10).
import assert from "node:assert/strict";
import test from "node:test";

const { exceptionsOf, mapsUsed, withMapped } = await import("../../assets/event.js");

const data = {
  exception: {
    values: [
      {
        type: "Error",
        value: "no item",
        stacktrace: {
          frames: [
            { filename: "/srv/app/node_modules/x/index.js", function: "run", lineno: 3, vars: { a: 1 } },
            { filename: "/srv/app/dist/app.min.js", function: "a", lineno: 1, colno: 15, vars: { n: "kiwi" } },
          ],
        },
      },
    ],
  },
};

const shown = {
  type: "Error",
  value: "no item",
  frames: [
    { filename: "/srv/app/node_modules/x/index.js", function: "run", lineno: 3, mapped: false, error: "no artifact for ~/x/index.js in release 1" },
    {
      filename: "../src/cart.js",
      function: "addToCart",
      lineno: 5,
      colno: 5,
      in_app: true,
      mapped: true,
      map: "~/app.min.js.map",
      minified: { abs_path: "/srv/app/dist/app.min.js", function: "a", lineno: 1, colno: 15 },
    },
  ],
};

test("mapped frames take the place of the minified ones, keeping their variables", () => {
  const [sent] = exceptionsOf(data);
  const merged = withMapped(sent, shown);
  assert.equal(merged.frames[1].filename, "../src/cart.js");
  assert.deepEqual(merged.frames[1].vars, { n: "kiwi" });
  assert.equal(merged.frames[1].minified.function, "a");
  // An unmapped frame stays as sent, with the reason.
  assert.equal(merged.frames[0].filename, "/srv/app/node_modules/x/index.js");
  assert.match(merged.frames[0].error, /no artifact/);
  assert.deepEqual(mapsUsed(merged.frames), ["~/app.min.js.map"]);
});

test("a chain of another length is left as sent", () => {
  const [sent] = exceptionsOf(data);
  assert.equal(withMapped(sent, { frames: [] }), sent);
  assert.equal(withMapped(sent, null), sent);
  assert.deepEqual(mapsUsed(sent.frames), []);
});
