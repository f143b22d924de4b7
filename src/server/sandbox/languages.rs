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
}

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
    },
    Language {
        id: "java",
        name: "Java",
        version: "OpenJDK 17",
        source_file: "Main.java",
        // Sharing the class-data archive and a single-threaded compiler keep javac quick
        // under the pids and CPU limits.
        // `-d .`: classes land by package under the work dir, wherever their source is.
        compile: Some("javac -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -J-Xshare:auto -encoding UTF-8 -d . {sources}"),
        run: &["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Dfile.encoding=UTF-8", "{main_class}"],
        template: "import java.util.Scanner;\n\npublic class Main {\n    public static void main(String[] args) {\n        Scanner in = new Scanner(System.in);\n        String name = in.hasNextLine() ? in.nextLine().trim() : \"\";\n        if (name.isEmpty()) name = \"world\";\n        System.out.println(\"Hello, \" + name + \"!\");\n    }\n}\n",
        big_memory: true,
    },
    Language {
        id: "javascript",
        name: "JavaScript",
        version: "Node.js 18",
        source_file: "main.js",
        compile: None,
        run: &["node", "{main}"],
        template: "const lines = require(\"fs\").readFileSync(0, \"utf8\").split(\"\\n\");\nconst name = lines[0].trim() || \"world\";\nconsole.log(`Hello, ${name}!`);\n",
        big_memory: false,
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
            limits: self.limits(cfg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_languages_are_there() {
        for id in ["python", "cpp", "java", "javascript"] {
            assert!(find(id).is_some(), "{id}");
        }
        assert!(find("cobol").is_none());
    }
}
