//! The language table: the one place that says how each language is compiled and run.
//!
//! A program is one or more files (the single `code` of a request is one file named
//! `source_file`). Commands are templates the engine fills per run (see
//! `protocol::commands`), so that one warm container serves any program:
//! - `{sources}`: every file with the language's extension (`source_file`'s), in the
//!   order given, the main file first, separated by spaces. File names are validated to
//!   `[A-Za-z0-9_.-]` with at most one `/`, never starting with `.` or `-`, so they are
//!   safe words for `/bin/sh -c` and never read as options.
//! - `{main}`: the entry file's path (`main.py`, `app/main.py`).
//! - `{main_class}`: the entry file's name without its extension, after the `package`
//!   the file declares, if any (`app/Main.java` with `package app;` → `app.Main`).
//!
//! The compile command runs under `/bin/sh -c` in the work dir; the run command is one
//! word per element (no shell), and the run's arguments are appended to it.

use crate::model::{LanguageInfo, LanguageLimits, LimitRange};
use crate::server::config::SandboxConfig;

/// How one language is built and run inside its runtime image.
#[derive(Debug)]
pub struct Language {
    /// Id used by the API (`"python"`).
    pub id: &'static str,
    pub name: &'static str,
    pub version: &'static str,
    /// File a single `code` is written to, inside the work dir; its extension is the
    /// language's (the files `{sources}` names).
    pub source_file: &'static str,
    /// Shell command template (see the module doc) that compiles the sources, if the
    /// language has a compile step.
    pub compile: Option<&'static str>,
    /// Program and arguments (templates, see the module doc) that run the program; the
    /// run's own arguments follow them.
    pub run: &'static [&'static str],
    /// Starter code shown in the editor.
    pub template: &'static str,
    /// Needs the larger memory limit (the JVM).
    pub big_memory: bool,
    /// What the image holds beyond the language's standard library (`"numpy 1.24"`).
    pub libraries: &'static [&'static str],
    /// In an interactive run the program's stdin and stdout are a terminal, so that C
    /// stdio flushes a prompt before reading, as at a terminal. Only for languages whose
    /// runtimes buffer by the C library's rules: Python's `input()` would write its prompt
    /// to stderr on a terminal, and Java and Node do not look.
    pub tty: bool,
    /// A prefix of `run` that the container's supervisor starts while the container waits
    /// in the pool (`--warm`, docs/SANDBOX.md); the run then hands the rest of its command
    /// to that process. Empty: the program starts when its run comes.
    pub warm: &'static [&'static str],
    /// The same for the compile step (`--warm-compile`): the words the compile command
    /// starts with, separated by single spaces.
    pub warm_compile: &'static [&'static str],
}

/// Node's start-up snapshot in the images that have Node (runtimes/Dockerfile).
const NODE_BLOB: &str = "/usr/local/libexec/own-ide/node.blob";

/// Every language the engine runs.
pub static LANGUAGES: &[Language] = &[
    Language {
        id: "python",
        name: "Python",
        version: "3.11",
        source_file: "main.py",
        compile: None,
        run: &["python3", "-u", "{main}"],
        template: "import sys\n\nname = sys.stdin.readline().strip() or \"world\"\nprint(f\"Hello, {name}!\")\n",
        big_memory: false,
        libraries: &["numpy 1.24"],
        tty: false,
        warm: &[],
        warm_compile: &[],
    },
    Language {
        id: "cpp",
        name: "C++",
        version: "GCC 12 (C++17)",
        source_file: "main.cpp",
        // Every translation unit, linked into one program.
        compile: Some("g++ -O2 -std=c++17 -pipe -o main {sources}"),
        run: &["./main"],
        template: "#include <iostream>\n#include <string>\n\nint main() {\n    std::string name;\n    if (!std::getline(std::cin, name) || name.empty()) name = \"world\";\n    std::cout << \"Hello, \" << name << \"!\" << std::endl;\n    return 0;\n}\n",
        big_memory: false,
        libraries: &[],
        tty: true,
        warm: &[],
        warm_compile: &[],
    },
    Language {
        id: "java",
        name: "Java",
        version: "OpenJDK 17",
        source_file: "Main.java",
        // javac maps the image's archive of its own classes (runtimes/Dockerfile), skips
        // the search for annotation processors and writes no perf-data file; with a
        // single-threaded collector and the client compiler it starts in half the time
        // under the pids and CPU limits.
        // `-d .`: classes land by package under the work dir, wherever their source is.
        // javac runs as WarmJavac (runtimes/java/WarmJavac.java), which the supervisor
        // pre-starts and warms up in the pool (`warm_compile`); started afresh it is plain
        // javac.
        compile: Some("java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -XX:SharedArchiveFile=/usr/local/libexec/own-ide/javac.jsa -cp /usr/local/libexec/own-ide/warm-javac.jar WarmJavac -proc:none -encoding UTF-8 -d . {sources}"),
        run: &["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-Xshare:auto", "-Dfile.encoding=UTF-8", "{main_class}"],
        template: "import java.util.Scanner;\n\npublic class Main {\n    public static void main(String[] args) {\n        Scanner in = new Scanner(System.in);\n        String name = in.hasNextLine() ? in.nextLine().trim() : \"\";\n        if (name.isEmpty()) name = \"world\";\n        System.out.println(\"Hello, \" + name + \"!\");\n    }\n}\n",
        big_memory: true,
        libraries: &[],
        tty: false,
        warm: &[],
        warm_compile: &["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-XX:SharedArchiveFile=/usr/local/libexec/own-ide/javac.jsa", "-cp", "/usr/local/libexec/own-ide/warm-javac.jar", "WarmJavac"],
    },
    Language {
        id: "javascript",
        name: "JavaScript",
        version: "Node.js 18",
        source_file: "main.js",
        compile: None,
        // The image's start-up snapshot (runtimes/Dockerfile): Debian's node has none.
        run: &["node", "--snapshot-blob", NODE_BLOB, "{main}"],
        template: "const lines = require(\"fs\").readFileSync(0, \"utf8\").split(\"\\n\");\nconst name = lines[0].trim() || \"world\";\nconsole.log(`Hello, ${name}!`);\n",
        big_memory: false,
        libraries: &[],
        tty: false,
        // Node boots from its snapshot in the pool and only loads the program when the
        // run comes (runtimes/javascript/warm.js).
        warm: &["node", "--snapshot-blob", NODE_BLOB],
        warm_compile: &[],
    },
    Language {
        id: "c",
        name: "C",
        version: "GCC 12 (C17)",
        source_file: "main.c",
        // Every translation unit, linked into one program; libm because people expect
        // <math.h> to link as it does on their machine.
        compile: Some("gcc -O2 -std=c17 -pipe -o main {sources} -lm"),
        run: &["./main"],
        template: "#include <stdio.h>\n#include <string.h>\n\nint main(void) {\n    char name[256];\n    if (!fgets(name, sizeof name, stdin)) name[0] = '\\0';\n    name[strcspn(name, \"\\r\\n\")] = '\\0';\n    printf(\"Hello, %s!\\n\", name[0] ? name : \"world\");\n    return 0;\n}\n",
        big_memory: false,
        libraries: &[],
        tty: true,
        warm: &[],
        warm_compile: &[],
    },
    Language {
        id: "rust",
        name: "Rust",
        version: "rustc 1.63 (2021 edition)",
        source_file: "main.rs",
        // The crate root is the main file; `mod util;` finds util.rs beside it. rustc
        // links with cc, whose temporary files go to /tmp (nothing runs from there).
        compile: Some("rustc --edition 2021 -O -C debuginfo=0 -o main {main}"),
        run: &["./main"],
        template: "use std::io::BufRead;\n\nfn main() {\n    let mut name = String::new();\n    std::io::stdin().lock().read_line(&mut name).ok();\n    let name = match name.trim() {\n        \"\" => \"world\",\n        n => n,\n    };\n    println!(\"Hello, {name}!\");\n}\n",
        big_memory: false,
        libraries: &[],
        tty: false,
        warm: &[],
        warm_compile: &[],
    },
    Language {
        id: "go",
        name: "Go",
        version: "Go 1.19",
        source_file: "main.go",
        // A module named `prog` unless the program brings its own go.mod, so packages in
        // a directory import as "prog/<dir>". The build cache and GOPATH live in /tmp (the
        // root is read-only); no proxy, no network; `-p 1` keeps the build's processes
        // within the pids limit. No -trimpath: it would rebuild the whole standard library
        // (25 s) instead of using the precompiled one (0.6 s).
        compile: Some("[ -e go.mod ] || printf 'module prog\\n\\ngo 1.19\\n' > go.mod; GOCACHE=/tmp/go-cache GOPATH=/tmp/go GOTMPDIR=/tmp GOPROXY=off GOFLAGS=-mod=mod GO111MODULE=on go build -p 1 -o main ."),
        run: &["./main"],
        template: "package main\n\nimport (\n\t\"bufio\"\n\t\"fmt\"\n\t\"os\"\n\t\"strings\"\n)\n\nfunc main() {\n\tname, _ := bufio.NewReader(os.Stdin).ReadString('\\n')\n\tname = strings.TrimSpace(name)\n\tif name == \"\" {\n\t\tname = \"world\"\n\t}\n\tfmt.Printf(\"Hello, %s!\\n\", name)\n}\n",
        big_memory: false,
        libraries: &[],
        tty: false,
        warm: &[],
        warm_compile: &[],
    },
    Language {
        id: "typescript",
        name: "TypeScript",
        version: "esbuild 0.17 + Node.js 18",
        source_file: "main.ts",
        // Types are stripped, not checked (as Deno, Bun and ts-node's transpile-only mode
        // do): esbuild bundles the main file and what it imports into one script in
        // milliseconds, where tsc would take seconds per run.
        compile: Some("esbuild {main} --bundle --platform=node --format=cjs --target=node18 --log-level=warning --outfile=/tmp/main.js"),
        run: &["node", "--snapshot-blob", NODE_BLOB, "/tmp/main.js"],
        template: "const lines: string[] = require(\"fs\").readFileSync(0, \"utf8\").split(\"\\n\");\nconst name: string = lines[0].trim() || \"world\";\nconsole.log(`Hello, ${name}!`);\n",
        big_memory: false,
        libraries: &[],
        tty: false,
        warm: &[],
        warm_compile: &[],
    },
];

/// Looks a language up by its API id.
pub fn find(id: &str) -> Option<&'static Language> {
    LANGUAGES.iter().find(|l| l.id == id)
}

impl Language {
    /// The extension of the language's source files, without the dot (`"py"`).
    pub fn extension(&self) -> &'static str {
        self.source_file.rsplit_once('.').map_or("", |(_, ext)| ext)
    }

    /// The limits a run of this language may choose: the configured settings are both
    /// the defaults and the caps (a caller may only ask for less).
    pub fn limits(&self, cfg: &SandboxConfig) -> LanguageLimits {
        let memory = if self.big_memory {
            cfg.java_memory_mb
        } else {
            cfg.memory_mb
        };
        let time = cfg.run_time_limit.as_millis() as u64;
        LanguageLimits {
            time_ms: LimitRange {
                default: time,
                max: time,
            },
            memory_mb: LimitRange {
                default: memory,
                max: memory,
            },
        }
    }

    /// What clients see.
    pub fn info(&self, cfg: &SandboxConfig) -> LanguageInfo {
        LanguageInfo {
            id: self.id.into(),
            name: self.name.into(),
            version: self.version.into(),
            template: self.template.into(),
            source_file: self.source_file.into(),
            extension: self.extension().into(),
            libraries: self.libraries.iter().map(|l| (*l).into()).collect(),
            limits: self.limits(cfg),
        }
    }
}

/// The schema of a language id in the API description: a string, one of the table's ids.
pub struct LanguageId;

fn language_ids(extra: &[&'static str]) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let ids = LANGUAGES.iter().map(|l| l.id).chain(extra.iter().copied());
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ids))
        .into()
}

impl utoipa::PartialSchema for LanguageId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        language_ids(&[])
    }
}

impl utoipa::ToSchema for LanguageId {}

/// A language filter in the API description: a language id, or empty for all.
pub struct LanguageFilter;

impl utoipa::PartialSchema for LanguageFilter {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        language_ids(&[""])
    }
}

impl utoipa::ToSchema for LanguageFilter {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The supervisor hands a run to the warm process only when the run's command starts
    /// with the warm command and names more: a warm command that is not such a prefix
    /// would be started in every pooled container and never used.
    #[test]
    fn each_warm_command_is_a_strict_prefix_of_the_run_command() {
        for lang in LANGUAGES.iter().filter(|l| !l.warm.is_empty()) {
            assert!(lang.run.len() > lang.warm.len(), "{}", lang.id);
            assert_eq!(&lang.run[..lang.warm.len()], lang.warm, "{}", lang.id);
            assert!(
                lang.compile.is_none(),
                "{}: the compile step would kill it",
                lang.id
            );
        }
        for lang in LANGUAGES.iter().filter(|l| !l.warm_compile.is_empty()) {
            let compile = lang.compile.expect("a compile step");
            let prefix = format!("{} ", lang.warm_compile.join(" "));
            assert!(compile.starts_with(&prefix), "{}", lang.id);
            assert!(lang.warm.is_empty(), "{}: one warm process", lang.id);
        }
    }

    #[test]
    fn the_eight_languages_are_there() {
        for id in [
            "python",
            "cpp",
            "java",
            "javascript",
            "c",
            "rust",
            "go",
            "typescript",
        ] {
            assert!(find(id).is_some(), "{id}");
        }
        assert!(find("cobol").is_none());
    }
}
