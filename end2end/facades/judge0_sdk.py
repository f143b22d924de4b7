"""The official Judge0 Python SDK (PyPI `judge0`) against Own-IDE's /judge0, unchanged:
its generic Client(endpoint, headers) with our API token as X-Auth-Token, running the
SDK's documented examples (a single run, a batch over test cases, stdin with an expected
output judged Accepted and one judged Wrong Answer, a compile error, a time limit).

Run by scripts/test.sh against the app it starts: OWN_IDE_BASE_URL names it. Prints one
line per example and exits non-zero on the first one that does not behave as documented.
"""

import json
import os
import random
import sys
import uuid

import httpx
import judge0

BASE = os.environ["OWN_IDE_BASE_URL"].rstrip("/")


def token() -> str:
    """A fresh user's API token. The request comes through the test runner, a trusted
    proxy, as a fresh address (registrations are limited per address)."""
    name = "sdk_" + uuid.uuid4().hex[:12]
    ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    headers = {"X-Forwarded-For": ip}
    creds = {"username": name, "password": "correct horse"}
    r = httpx.post(f"{BASE}/api/v1/users", json=creds, headers=headers)
    r.raise_for_status()
    r = httpx.post(f"{BASE}/api/v1/token", json=creds, headers=headers)
    r.raise_for_status()
    return r.json()["access_token"]


def check(what: str, ok: bool, detail) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        print(f"     got: {detail}", file=sys.stderr)
        sys.exit(1)


client = judge0.Client(f"{BASE}/judge0", {"X-Auth-Token": token()})
check("the client resolves the SDK's language aliases by /about's version",
      client.get_language_id(judge0.PYTHON) == 71 and client.is_language_supported(judge0.PYTHON),
      client.version)

# "hello, world" (README)
result = judge0.run(client=client, source_code="print('hello, world')", language=judge0.PYTHON)
check("a single run", result.stdout == "hello, world\n" and result.status == judge0.Status.ACCEPTED,
      result)
check("time in seconds, memory in KB", 0 <= result.time < 5 and result.memory > 1000, result)

# "Test Cases" (README): one submission per test case, sent as a batch.
results = judge0.run(
    client=client,
    source_code="print(f'Hello, {input()}!')",
    language=judge0.PYTHON,
    test_cases=[
        ("Bob", "Hello, Bob!"),
        {"input": "Alice", "expected_output": "Hello, Alice!"},
        ["Charlie", "Hello, Charlie!"],
    ],
)
check("a batch of test cases, each Accepted",
      [r.status for r in results] == [judge0.Status.ACCEPTED] * 3
      and [r.stdout for r in results] == ["Hello, Bob!\n", "Hello, Alice!\n", "Hello, Charlie!\n"],
      [(r.status, r.stdout) for r in results])

# "Test Cases And Multiple Languages" (README), with C++ for the second language.
submissions = [
    judge0.Submission(source_code="print(f'Hello, {input()}!')", language=judge0.PYTHON),
    judge0.Submission(
        source_code='#include <iostream>\n#include <string>\nint main() { std::string n; std::cin >> n; std::cout << "Hello, " << n << "!" << std::endl; }\n',
        language=judge0.CPP,
    ),
]
test_cases = [("Bob", "Hello, Bob!"), ("Alice", "Hello, Alice!")]
results = judge0.run(client=client, submissions=submissions, test_cases=test_cases)
check("a batch over two languages",
      [r.status for r in results] == [judge0.Status.ACCEPTED] * 4,
      [(r.status, r.stdout, r.compile_output) for r in results])

# Stdin and an expected output judged Wrong Answer.
result = judge0.run(client=client, source_code="print(f'Hi, {input()}')", language=judge0.PYTHON,
                    test_cases=judge0.TestCase("Herman", "Hello, Herman"))
check("a wrong answer", result.status == judge0.Status.WRONG_ANSWER and result.stdout == "Hi, Herman\n",
      result)

# A compile error.
result = judge0.run(client=client, source_code="int main() { return missing; }", language=judge0.CPP)
check("a compile error",
      result.status == judge0.Status.COMPILATION_ERROR and "missing" in (result.compile_output or ""),
      result)

# A time limit, asynchronously (async_run, then wait).
submission = judge0.async_run(client=client, source_code="while True:\n    pass\n", language=judge0.PYTHON)
check("async_run returns at once with a token", submission.token is not None and submission.stdout is None,
      submission)
judge0.wait(client=client, submissions=submission)
check("a time limit", submission.status == judge0.Status.TIME_LIMIT_EXCEEDED, submission)

# Arguments and a lower time limit, as Submission fields.
result = judge0.run(client=client, submissions=judge0.Submission(
    source_code="import sys\nprint(sys.argv[1:])", language=judge0.PYTHON,
    command_line_arguments="a 'b c'"))
check("command line arguments", result.stdout == "['a', 'b c']\n", result)
result = judge0.run(client=client, submissions=judge0.Submission(
    source_code="import time\nt = time.time()\nwhile time.time() - t < 3:\n    pass\n",
    language=judge0.PYTHON, cpu_time_limit=1))
check("a lower time limit", result.status == judge0.Status.TIME_LIMIT_EXCEEDED, result)

# A limit beyond our cap: Judge0's 422 shape, raised by the SDK as an HTTP error.
try:
    judge0.run(client=client, submissions=judge0.Submission(
        source_code="print(1)", language=judge0.PYTHON, cpu_time_limit=1000))
    check("a limit over the cap is refused", False, "accepted")
except httpx.HTTPStatusError as e:
    body = e.response.json()
    check("a limit over the cap is refused with Judge0's 422",
          e.response.status_code == 422 and "cpu_time_limit" in body, json.dumps(body))
print("judge0 SDK: all examples passed")
