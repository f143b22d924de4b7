// piston-client (npm) against Own-IDE's /piston, unchanged: runtimes(), then execute()
// for every language it lists, with a named file and stdin. Run by scripts/test.sh
// against the app it starts (OWN_IDE_BASE_URL).
//
// piston-client cannot send headers, and the test app gives a guest (one address) five
// runs a day; so the client talks to a small gateway here that forwards each request
// with a fresh X-Forwarded-For (the test runner is a trusted proxy of the app), as a
// deployment's gateway would for many clients.
import http from "node:http";
import piston from "piston-client";

const base = new URL(process.env.OWN_IDE_BASE_URL);

const gateway = http.createServer((req, res) => {
  const ip = `10.${rnd()}.${rnd()}.${1 + (rnd() % 254)}`;
  const up = http.request(
    { host: base.hostname, port: base.port, path: req.url, method: req.method,
      headers: { ...req.headers, host: base.host, "x-forwarded-for": ip } },
    (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
  up.on("error", (e) => { res.writeHead(502); res.end(String(e)); });
  req.pipe(up);
});
function rnd() { return Math.floor(Math.random() * 256); }
await new Promise((ok) => gateway.listen(0, "127.0.0.1", ok));
const client = piston({ server: `http://127.0.0.1:${gateway.address().port}/piston` });

function check(what, ok, detail) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) {
    console.error("     got:", JSON.stringify(detail));
    process.exitCode = 1;
  }
}

// Each language reads its input and prints it back with a greeting.
const programs = {
  python: ["main.py", "print('Hello, ' + input() + '!')"],
  "c++": ["main.cpp", "#include <iostream>\n#include <string>\nint main() { std::string s; std::getline(std::cin, s); std::cout << \"Hello, \" << s << \"!\" << std::endl; }\n"],
  c: ["main.c", "#include <stdio.h>\n#include <string.h>\nint main(void) { char s[64]; if (!fgets(s, sizeof s, stdin)) return 1; s[strcspn(s, \"\\n\")] = 0; printf(\"Hello, %s!\\n\", s); return 0; }\n"],
  java: ["Main.java", "public class Main { public static void main(String[] a) { System.out.println(\"Hello, \" + new java.util.Scanner(System.in).nextLine() + \"!\"); } }\n"],
  javascript: ["main.js", "const s = require('fs').readFileSync(0, 'utf8').trim(); console.log(`Hello, ${s}!`);\n"],
  typescript: ["main.ts", "const s: string = require('fs').readFileSync(0, 'utf8').trim(); console.log(`Hello, ${s}!`);\n"],
  go: ["main.go", "package main\nimport (\"bufio\"; \"fmt\"; \"os\")\nfunc main() { s := bufio.NewScanner(os.Stdin); s.Scan(); fmt.Printf(\"Hello, %s!\\n\", s.Text()) }\n"],
  rust: ["main.rs", "use std::io::BufRead;\nfn main() { let mut s = String::new(); std::io::stdin().lock().read_line(&mut s).unwrap(); println!(\"Hello, {}!\", s.trim()); }\n"],
};

const runtimes = await client.runtimes();
check("runtimes() lists language, version and aliases",
  Array.isArray(runtimes) && runtimes.length >= 4 &&
  runtimes.every((r) => r.language && /^\d+\.\d+\.\d+$/.test(r.version) && Array.isArray(r.aliases)),
  runtimes);
for (const rt of runtimes) {
  const program = programs[rt.language];
  check(`a program for ${rt.language}`, program !== undefined, rt);
  if (!program) continue;
  // Arguments and limits below the server's are refused until runs take them (issue 15):
  // the client's defaults (args 1 2 3, run_timeout 3000) are replaced by none and by 0,
  // Piston's "the server's default".
  const result = await client.execute(rt.language, {
    files: [{ name: program[0], content: program[1] }],
    stdin: "Piston\n",
    args: [],
    compileTimeout: 0,
    runTimeout: 0,
  });
  check(`execute() ${rt.language} ${rt.version}`,
    result.run && result.run.stdout === "Hello, Piston!\n" && result.run.code === 0 &&
    result.language === rt.language && result.version === rt.version,
    result);
}
// An alias and a version range, as Piston resolves them.
const viaAlias = await client.execute({ language: "py", version: "3.x", files: [{ content: "print(6 * 7)" }], args: [], runTimeout: 0, compileTimeout: 0 });
check("an alias and a version range", viaAlias.run && viaAlias.run.stdout === "42\n" && viaAlias.language === "python", viaAlias);
// Piston's error shape.
const unknown = await client.execute({ language: "cobol", version: "*", files: [{ content: "" }] });
check("an unknown runtime answers Piston's {message}", unknown.message === "cobol-* runtime is unknown", unknown);
gateway.close();
console.log(process.exitCode ? "piston-client: FAILED" : "piston-client: all checks passed");
