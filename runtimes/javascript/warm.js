// The entry of the image's Node.js start-up snapshot (runtimes/Dockerfile). The snapshot
// holds a booted Node; on start it runs the function below instead of a main script:
// - `node --snapshot-blob <blob> main.js args...` runs main.js as the main module, as
//   `node main.js args...` does;
// - with no script, Node was pre-started by the supervisor (`--warm`) while the container
//   waited in the pool: the script and its arguments arrive on fd 3 (words ending in NUL),
//   which is then closed, and the program runs as above. Nothing else is read before.
'use strict';
// Taken at build time (a require of `module` at run time would print a warning); its
// `runMain` is set when the snapshot starts.
const Module = require('module');
const fs = require('fs');
const path = require('path');

require('v8').startupSnapshot.setDeserializeMainFunction(() => {
  let words = process.argv.slice(1);
  if (words.length === 0) {
    const chunks = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      let n;
      try {
        n = fs.readSync(3, buf, 0, buf.length, null);
      } catch (e) {
        if (e.code === 'EAGAIN' || e.code === 'EINTR') continue;
        throw e;
      }
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    fs.closeSync(3);
    words = Buffer.concat(chunks).toString('utf8').split('\0');
    words.pop();
    // The supervisor ended without handing over a run.
    if (words.length === 0) process.exit(0);
  }
  process.argv = [process.argv[0], path.resolve(words[0]), ...words.slice(1)];
  Module.runMain();
});
