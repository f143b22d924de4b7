//! The language table: the one place that says how each language is compiled and run.

use crate::model::LanguageInfo;

/// How one language is built and run inside its runtime image.
#[derive(Debug)]
pub struct Language {
    /// Id used by the API (`"python"`).
    pub id: &'static str,
    pub name: &'static str,
    pub version: &'static str,
    /// File the code is written to, inside the work dir.
    pub source_file: &'static str,
    /// Shell command that compiles `source_file`, if the language has a compile step.
    pub compile: Option<&'static str>,
    /// Program and arguments that run the code.
    pub run: &'static [&'static str],
    /// Starter code shown in the editor.
    pub template: &'static str,
    /// Needs the larger memory limit (the JVM).
    pub big_memory: bool,
    /// In an interactive run the program's stdin and stdout are a terminal, so that C
    /// stdio flushes a prompt before reading, as at a terminal. Only for languages whose
    /// runtimes buffer by the C library's rules: Python's `input()` would write its prompt
    /// to stderr on a terminal, and Java and Node do not look.
    pub tty: bool,
}

/// Every language the engine runs.
pub static LANGUAGES: &[Language] = &[
    Language {
        id: "python",
        name: "Python",
        version: "3.11",
        source_file: "main.py",
        compile: None,
        run: &["python3", "-u", "main.py"],
        template: "import sys\n\nname = sys.stdin.readline().strip() or \"world\"\nprint(f\"Hello, {name}!\")\n",
        big_memory: false,
        tty: false,
    },
    Language {
        id: "cpp",
        name: "C++",
        version: "GCC 12 (C++17)",
        source_file: "main.cpp",
        compile: Some("g++ -O2 -std=c++17 -pipe -o main main.cpp"),
        run: &["./main"],
        template: "#include <iostream>\n#include <string>\n\nint main() {\n    std::string name;\n    if (!std::getline(std::cin, name) || name.empty()) name = \"world\";\n    std::cout << \"Hello, \" << name << \"!\" << std::endl;\n    return 0;\n}\n",
        big_memory: false,
        tty: true,
    },
    Language {
        id: "java",
        name: "Java",
        version: "OpenJDK 17",
        source_file: "Main.java",
        // Sharing the class-data archive and a single-threaded compiler keep javac quick
        // under the pids and CPU limits.
        compile: Some("javac -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -J-Xshare:auto -encoding UTF-8 Main.java"),
        run: &["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Dfile.encoding=UTF-8", "Main"],
        template: "import java.util.Scanner;\n\npublic class Main {\n    public static void main(String[] args) {\n        Scanner in = new Scanner(System.in);\n        String name = in.hasNextLine() ? in.nextLine().trim() : \"\";\n        if (name.isEmpty()) name = \"world\";\n        System.out.println(\"Hello, \" + name + \"!\");\n    }\n}\n",
        big_memory: true,
        tty: false,
    },
    Language {
        id: "javascript",
        name: "JavaScript",
        version: "Node.js 18",
        source_file: "main.js",
        compile: None,
        run: &["node", "main.js"],
        template: "const lines = require(\"fs\").readFileSync(0, \"utf8\").split(\"\\n\");\nconst name = lines[0].trim() || \"world\";\nconsole.log(`Hello, ${name}!`);\n",
        big_memory: false,
        tty: false,
    },
];

/// Looks a language up by its API id.
pub fn find(id: &str) -> Option<&'static Language> {
    LANGUAGES.iter().find(|l| l.id == id)
}

impl Language {
    /// What clients see.
    pub fn info(&self) -> LanguageInfo {
        LanguageInfo {
            id: self.id.into(),
            name: self.name.into(),
            version: self.version.into(),
            template: self.template.into(),
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
