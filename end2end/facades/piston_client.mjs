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

// Each language reads its input, greets it from a second file where the language has
// modules, and prints its arguments.
const programs = {
  python: [
    ["main.py", "import sys\nfrom greet import greet\nprint(greet(input()), *sys.argv[1:])\n"],
    ["greet.py", "def greet(name):\n    return 'Hello, ' + name + '!'\n"],
  ],
  "c++": [
    ["main.cpp", "#include <iostream>\n#include <string>\nstd::string greet(const std::string&);\nint main(int argc, char** argv) { std::string s; std::getline(std::cin, s); std::cout << greet(s); for (int i = 1; i < argc; i++) std::cout << ' ' << argv[i]; std::cout << std::endl; }\n"],
    ["greet.cpp", "#include <string>\nstd::string greet(const std::string& n) { return \"Hello, \" + n + \"!\"; }\n"],
  ],
  c: [["main.c", "#include <stdio.h>\n#include <string.h>\nint main(int argc, char** argv) { char s[64]; if (!fgets(s, sizeof s, stdin)) return 1; s[strcspn(s, \"\\n\")] = 0; printf(\"Hello, %s!\", s); for (int i = 1; i < argc; i++) printf(\" %s\", argv[i]); printf(\"\\n\"); return 0; }\n"]],
  java: [
    ["Main.java", "public class Main { public static void main(String[] a) { System.out.println(Greet.greet(new java.util.Scanner(System.in).nextLine()) + (a.length > 0 ? \" \" + String.join(\" \", a) : \"\")); } }\n"],
    ["Greet.java", "public class Greet { static String greet(String n) { return \"Hello, \" + n + \"!\"; } }\n"],
  ],
  javascript: [
    ["main.js", "const { greet } = require('./greet.js');\nconst s = require('fs').readFileSync(0, 'utf8').trim();\nconsole.log([greet(s), ...process.argv.slice(2)].join(' '));\n"],
    ["greet.js", "exports.greet = (n) => `Hello, ${n}!`;\n"],
  ],
  typescript: [["main.ts", "const s: string = require('fs').readFileSync(0, 'utf8').trim();\nconsole.log([`Hello, ${s}!`, ...process.argv.slice(2)].join(' '));\n"]],
  go: [["main.go", "package main\nimport (\"bufio\"; \"fmt\"; \"os\"; \"strings\")\nfunc main() { s := bufio.NewScanner(os.Stdin); s.Scan(); fmt.Println(strings.Join(append([]string{\"Hello, \" + s.Text() + \"!\"}, os.Args[1:]...), \" \")) }\n"]],
  rust: [["main.rs", "use std::io::BufRead;\nfn main() { let mut s = String::new(); std::io::stdin().lock().read_line(&mut s).unwrap(); let mut out = vec![format!(\"Hello, {}!\", s.trim())]; out.extend(std::env::args().skip(1)); println!(\"{}\", out.join(\" \")); }\n"]],
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
  // The client's defaults stand (args 1 2 3, run_timeout 3000, memory -1) except the
  // compile timeout: compiling has the server's fixed limit, so 0 asks for it.
  const result = await client.execute(rt.language, {
    files: program.map(([name, content]) => ({ name, content })),
    stdin: "Piston\n",
    compileTimeout: 0,
  });
  check(`execute() ${rt.language} ${rt.version}, ${program.length} file(s), args and stdin`,
    result.run && result.run.stdout === "Hello, Piston! 1 2 3\n" && result.run.code === 0 &&
    result.language === rt.language && result.version === rt.version,
    result);
}
// An alias and a version range, as Piston resolves them.
const viaAlias = await client.execute({ language: "py", version: "3.x", files: [{ content: "print(6 * 7)" }], compileTimeout: 0 });
check("an alias and a version range", viaAlias.run && viaAlias.run.stdout === "42\n" && viaAlias.language === "python", viaAlias);
// Piston's error shape.
const unknown = await client.execute({ language: "cobol", version: "*", files: [{ content: "" }] });
check("an unknown runtime answers Piston's {message}", unknown.message === "cobol-* runtime is unknown", unknown);
gateway.close();
console.log(process.exitCode ? "piston-client: FAILED" : "piston-client: all checks passed");
