//! The supervisor protocol (docs/SANDBOX.md): the static supervisor baked into every
//! runtime image is each container's own process; the engine gives it its argv, writes
//! its stdin (a header with the nonce, the source files, then the program's stdin) and
//! reads back its nonce-framed reports (`C` for the compile step, `R` for the run).
//!
//! Trust model: the nonce is never in argv, the environment or a file, the supervisor
//! consumes it from the pipe before any fork and makes itself non-dumpable first, so the
//! program can neither read it (`/proc/<pid>/mem`, `/fd`, ptrace) nor print a valid
//! report: anything it prints, fake reports included, stays its output. The figures come
//! from `wait4` and the cgroup, read by the supervisor, never from a file the program can
//! write. The program can kill the supervisor (same user): then there is no report, and
//! the engine reports no exit status rather than invent one.

use super::languages::Language;
use super::program::Program;

/// Where the supervisor lives in every runtime image.
pub(super) const SUPERVISOR: &str = "/usr/local/libexec/own-ide/supervisor";

/// A fresh random nonce for one run's reports (32 lowercase hex digits).
pub(super) fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Everything the supervisor reads, written at once: the header `<nonce> <payload_len>`
/// (then, for an interactive run, ` cpu=<s>`, the program's CPU-time limit, and ` tty`
/// when the language wants a terminal), the payload, then the program's stdin, which the
/// supervisor leaves in the pipe. The payload is records `<name> <size>\n<bytes>`: one
/// per source file, then the commands (`:compile` once, `:run` once per word), which a
/// warm container, started before its run was known, cannot have in its argv.
pub(super) fn input(
    nonce: &str,
    program: &Program,
    commands: &Commands,
    stdin: &str,
    cpu_limit_s: Option<u64>,
) -> Vec<u8> {
    let mut payload = Vec::new();
    let mut record = |name: &str, bytes: &[u8]| {
        payload.extend_from_slice(format!("{name} {}\n", bytes.len()).as_bytes());
        payload.extend_from_slice(bytes);
    };
    for f in &program.files {
        record(&f.name, f.content.as_bytes());
    }
    if let Some(compile) = &commands.compile {
        record(":compile", compile.as_bytes());
    }
    for word in &commands.run {
        record(":run", word.as_bytes());
    }
    let cpu = match cpu_limit_s {
        Some(s) if commands.tty => format!(" cpu={s} tty"),
        Some(s) => format!(" cpu={s}"),
        None => String::new(),
    };
    let mut all = format!("{nonce} {}{cpu}\n", payload.len()).into_bytes();
    all.extend_from_slice(&payload);
    all.extend_from_slice(stdin.as_bytes());
    all
}

/// The container's command: the supervisor, with the language's warm command if it has
/// one (pre-started in the pool, see `Language::warm`); each run gives it its commands.
pub(super) fn command(lang: &Language) -> Vec<String> {
    let mut argv = vec![SUPERVISOR.to_string()];
    if !lang.warm.is_empty() {
        argv.push("--warm".to_string());
        argv.extend(lang.warm.iter().map(|w| w.to_string()));
    } else if !lang.warm_compile.is_empty() {
        argv.push("--warm-compile".to_string());
        argv.extend(lang.warm_compile.iter().map(|w| w.to_string()));
    }
    argv
}

/// One run's commands, filled in from the language table's templates.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Commands {
    /// For `/bin/sh -c`.
    pub compile: Option<String>,
    /// The program, its fixed arguments, then the run's own.
    pub run: Vec<String>,
    /// An interactive run gets a terminal (the language's `tty`).
    pub tty: bool,
}

/// Fills the language's templates (see `languages`) for `program`. The JVM gets a heap
/// ceiling of twice the container's memory limit, so that a program exhausting memory is
/// killed by the cgroup (a fact the supervisor reports) rather than ending in an
/// `OutOfMemoryError` it could as well print.
pub(super) fn commands(lang: &Language, program: &Program) -> Commands {
    let ext = format!(".{}", lang.extension());
    let main = program.main.as_str();
    // The main file first, then the others as given.
    let sources: Vec<&str> = std::iter::once(main)
        .chain(program.files.iter().map(|f| f.name.as_str()))
        .filter(|n| n.ends_with(&ext))
        .enumerate()
        .filter(|(i, n)| *i == 0 || *n != main)
        .map(|(_, n)| n)
        .collect();
    let main_class = || {
        let stem = main.rsplit('/').next().unwrap_or(main);
        let stem = stem.strip_suffix(&ext).unwrap_or(stem);
        let content = program
            .files
            .iter()
            .find(|f| f.name == main)
            .map_or("", |f| f.content.as_str());
        match declared_package(content) {
            Some(package) => format!("{package}.{stem}"),
            None => stem.to_string(),
        }
    };
    let fill = |t: &str| {
        let mut t = t
            .replace("{sources}", &sources.join(" "))
            .replace("{main}", main);
        if t.contains("{main_class}") {
            t = t.replace("{main_class}", &main_class());
        }
        t
    };
    let mut run = Vec::new();
    for (i, word) in lang.run.iter().enumerate() {
        run.push(fill(word));
        if i == 0 && *word == "java" {
            run.push(format!("-Xmx{}m", program.memory_mb * 2));
        }
    }
    run.extend(program.args.iter().cloned());
    Commands {
        compile: lang.compile.map(fill),
        run,
        tty: lang.tty,
    }
}

/// The `package` a Java-like source declares (`package a.b;` on a line of its own, before
/// any type), if it is made of identifier characters only.
fn declared_package(content: &str) -> Option<&str> {
    let mut in_comment = false;
    for line in content.lines() {
        let line = line.trim();
        if in_comment {
            if line.contains("*/") {
                in_comment = false;
            }
            continue;
        }
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        if line.starts_with("/*") {
            in_comment = !line.contains("*/");
            continue;
        }
        let name = line.strip_prefix("package ")?.split(';').next()?.trim();
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$');
        return ok.then_some(name);
    }
    None
}

/// What the supervisor reported about one step (`C` or `R`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Report {
    /// Exit status, when the process exited.
    pub exit: Option<i64>,
    /// Signal number, when a signal killed it.
    pub signal: Option<i64>,
    pub cpu_ms: u64,
    pub rss_kb: u64,
    /// The program's wall time (run reports only).
    pub wall_ms: Option<u64>,
    /// The memory cgroup killed a process during the step.
    pub oom: bool,
}

impl Report {
    /// Parses a report body `K exit=<n|-> signal=<n|-> cpu_ms=<n> rss_kb=<n>
    /// [wall_ms=<n>] oom=<0|1>` of kind `K`; `None` for anything else.
    pub fn parse(body: &[u8], kind: char) -> Option<Report> {
        let text = std::str::from_utf8(body).ok()?;
        let mut words = text.split(' ');
        if words.next()? != kind.to_string() {
            return None;
        }
        let mut r = Report::default();
        let (mut exit, mut signal, mut cpu, mut rss, mut oom) = (false, false, false, false, false);
        let opt = |v: &str| -> Option<Option<i64>> {
            if v == "-" {
                Some(None)
            } else {
                v.parse().ok().map(Some)
            }
        };
        for word in words {
            let (key, value) = word.split_once('=')?;
            match key {
                "exit" => (r.exit, exit) = (opt(value)?, true),
                "signal" => (r.signal, signal) = (opt(value)?, true),
                "cpu_ms" => (r.cpu_ms, cpu) = (value.parse().ok()?, true),
                "rss_kb" => (r.rss_kb, rss) = (value.parse().ok()?, true),
                "wall_ms" => r.wall_ms = Some(value.parse().ok()?),
                "oom" => {
                    r.oom = match value {
                        "0" => false,
                        "1" => true,
                        _ => return None,
                    };
                    oom = true;
                }
                _ => return None,
            }
        }
        (exit && signal && cpu && rss && oom && (r.exit.is_some() != r.signal.is_some()))
            .then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::sandbox::languages::find;

    #[test]
    fn reports_parse_exactly() {
        assert_eq!(
            Report::parse(
                b"R exit=0 signal=- cpu_ms=12 rss_kb=7672 wall_ms=30 oom=0",
                'R'
            ),
            Some(Report {
                exit: Some(0),
                signal: None,
                cpu_ms: 12,
                rss_kb: 7672,
                wall_ms: Some(30),
                oom: false,
            })
        );
        assert_eq!(
            Report::parse(b"C exit=- signal=9 cpu_ms=1 rss_kb=2 oom=1", 'C'),
            Some(Report {
                exit: None,
                signal: Some(9),
                cpu_ms: 1,
                rss_kb: 2,
                wall_ms: None,
                oom: true,
            })
        );
        // Wrong kind, missing or unknown fields, both or neither of exit and signal.
        assert_eq!(
            Report::parse(b"C exit=0 signal=- cpu_ms=1 rss_kb=2 oom=0", 'R'),
            None
        );
        assert_eq!(
            Report::parse(b"R exit=0 signal=- cpu_ms=1 oom=0", 'R'),
            None
        );
        assert_eq!(
            Report::parse(b"R exit=0 signal=- cpu_ms=1 rss_kb=2 oom=0 x=1", 'R'),
            None
        );
        assert_eq!(
            Report::parse(b"R exit=0 signal=9 cpu_ms=1 rss_kb=2 oom=0", 'R'),
            None
        );
        assert_eq!(
            Report::parse(b"R exit=- signal=- cpu_ms=1 rss_kb=2 oom=0", 'R'),
            None
        );
        assert_eq!(
            Report::parse(b"R exit=0 signal=- cpu_ms=1 rss_kb=2 oom=2", 'R'),
            None
        );
        assert_eq!(Report::parse(b"", 'R'), None);
    }

    fn program(files: &[(&str, &str)], main: &str, args: &[&str]) -> Program {
        Program {
            files: files
                .iter()
                .map(|(n, c)| crate::model::SourceFile {
                    name: n.to_string(),
                    content: c.to_string(),
                })
                .collect(),
            main: main.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            time: std::time::Duration::from_secs(1),
            time_chosen: false,
            memory_mb: 256,
        }
    }

    #[test]
    fn input_and_commands_follow_the_protocol() {
        let py = find("python").unwrap();
        let p = program(&[("main.py", "print(1)")], "main.py", &["a b"]);
        let c = commands(py, &p);
        assert_eq!(c.compile, None);
        assert_eq!(c.run, ["python3", "-u", "main.py", "a b"]);
        let framed = String::from_utf8(input("abc", &p, &c, "x\ny", None)).unwrap();
        assert_eq!(
            framed,
            "abc 65\nmain.py 8\nprint(1):run 7\npython3:run 2\n-u:run 7\nmain.py:run 3\na bx\ny"
        );
        // An interactive run's CPU limit; a terminal only where the language wants one.
        let framed = String::from_utf8(input("abc", &p, &c, "", Some(5))).unwrap();
        assert!(framed.starts_with("abc 65 cpu=5\nmain.py 8\n"), "{framed}");
        let cpp = find("cpp").unwrap();
        let p = program(&[("main.cpp", "int main(){}")], "main.cpp", &[]);
        let c = commands(cpp, &p);
        let framed = String::from_utf8(input("abc", &p, &c, "", Some(5))).unwrap();
        assert!(framed.contains(" cpu=5 tty\nmain.cpp 12\n"), "{framed}");
        assert_eq!(command(cpp), [SUPERVISOR]);
        // Node is pre-started by the supervisor, with the run's command minus the script.
        let js = find("javascript").unwrap();
        let run = commands(js, &program(&[("main.js", "")], "main.js", &["a"])).run;
        let warm = command(js);
        assert_eq!(warm[..2], [SUPERVISOR, "--warm"]);
        assert_eq!(warm[2..], run[..run.len() - 2]);
        // javac is pre-started as the compile command's first words.
        let java = find("java").unwrap();
        let compile = commands(java, &program(&[("Main.java", "")], "Main.java", &[])).compile;
        let warm = command(java);
        assert_eq!(warm[1], "--warm-compile");
        assert!(compile
            .unwrap()
            .starts_with(&format!("{} -proc:none", warm[2..].join(" "))));
    }

    #[test]
    fn templates_name_every_source_and_the_main_class() {
        let cpp = find("cpp").unwrap();
        let p = program(
            &[("util/a.cpp", ""), ("b.h", ""), ("main.cpp", "")],
            "main.cpp",
            &[],
        );
        assert_eq!(
            commands(cpp, &p).compile.unwrap(),
            "g++ -O2 -std=c++17 -pipe -o main main.cpp util/a.cpp"
        );
        let java = find("java").unwrap();
        let p = program(
            &[
                ("Helper.java", "class Helper {}"),
                (
                    "app/Main.java",
                    "// x\n/* y\n z */\npackage app;\npublic class Main {}",
                ),
            ],
            "app/Main.java",
            &["1"],
        );
        let c = commands(java, &p);
        assert!(c
            .compile
            .unwrap()
            .ends_with("-d . app/Main.java Helper.java"));
        assert_eq!(&c.run[..2], ["java", "-Xmx512m"]);
        assert_eq!(&c.run[c.run.len() - 2..], ["app.Main", "1"]);
        let p = program(&[("Main.java", "public class Main {}")], "Main.java", &[]);
        assert_eq!(commands(java, &p).run.last().unwrap(), "Main");
        assert_eq!(declared_package("package a.b;\nclass X{}"), Some("a.b"));
        assert_eq!(declared_package("import x;\npackage a;"), None);
        assert_eq!(declared_package("package a;b; rm -rf"), Some("a"));
        assert_eq!(declared_package("package $(x);"), None);
    }
}
