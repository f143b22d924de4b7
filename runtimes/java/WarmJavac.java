// javac in a JVM that the supervisor pre-starts while the container waits in the pool
// (`--warm-compile`, docs/SANDBOX.md). Given arguments it is javac (com.sun.tools.javac.Main,
// the code behind the javac command, with the same output and exit status). Given none, it
// first compiles a small program of its own, so that javac's classes are loaded and its hot
// paths compiled, then reads the real arguments from fd 3 (words ending in NUL, written by
// the supervisor when the run's sources are known) and compiles those; it skips the
// warm-up when they are there already. javac runs no code of the program (-proc:none: no
// annotation processors).
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

public final class WarmJavac {
    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            try (InputStream in = new FileInputStream("/proc/self/fd/3")) {
                // A container made for a run at once (not taken from the pool) has its
                // sources already: the warm-up would only delay them.
                if (in.available() == 0) {
                    warmUp();
                }
                args = handedOver(in);
            }
            if (args.length == 0) {
                return; // the supervisor ended without a compile
            }
        }
        System.exit(com.sun.tools.javac.Main.compile(args));
    }

    private static void warmUp() throws Exception {
        Path dir = Files.createTempDirectory("own-ide-warm");
        try {
            Path src = dir.resolve("Main.java");
            Files.writeString(src, String.join("\n",
                "import java.util.*;",
                "public class Main {",
                "  public static void main(String[] a) {",
                "    Scanner s = new Scanner(System.in);",
                "    List<String> l = new ArrayList<>();",
                "    while (s.hasNextLine()) l.add(s.nextLine().trim());",
                "    System.out.println(\"Hello, \" + (l.isEmpty() ? \"world\" : l.get(0)) + \"!\");",
                "  }",
                "}"));
            com.sun.tools.javac.Main.compile(
                new String[] {"-proc:none", "-encoding", "UTF-8", "-d", dir.toString(), src.toString()},
                new PrintWriter(Writer.nullWriter()));
        } finally {
            try (Stream<Path> all = Files.walk(dir)) {
                all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private static String[] handedOver(InputStream in) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        in.transferTo(bytes);
        List<String> words = new ArrayList<>();
        String all = bytes.toString(StandardCharsets.UTF_8);
        int start = 0;
        for (int i = 0; i < all.length(); i++) {
            if (all.charAt(i) == '\0') {
                words.add(all.substring(start, i));
                start = i + 1;
            }
        }
        return words.toArray(new String[0]);
    }
}
