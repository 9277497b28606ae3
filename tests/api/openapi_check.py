#!/usr/bin/env python3
"""Checks a running raftmq node's HTTP API against its own OpenAPI document with
schemathesis: every GET operation (the reads: nothing is changed) is called with generated
valid inputs, and each answer's status, content type and body must be ones the document
declares. Bounded (a few examples per operation, a timeout per request) so that it ends in
seconds.

Usage: openapi_check.py HTTP_ADDR TOKEN   (HTTP_ADDR as host:port)
Exit status 0 when every answer conforms; schemathesis's report on standard output.
"""

import subprocess
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    addr, token = sys.argv[1], sys.argv[2]
    base = f"http://{addr}"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base}/api/v1/openapi.json",
        "--url",
        base,
        "--header",
        f"Authorization: Bearer {token}",
        "--include-method",
        "GET",
        "--mode",
        "positive",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "15",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance,response_headers_conformance",
        "--generation-with-security-parameters",
        "false",
        "--request-timeout",
        "10",
        "--workers",
        "1",
        "--seed",
        "1",
        "--no-color",
    ]
    return subprocess.run(command, timeout=600).returncode


if __name__ == "__main__":
    sys.exit(main())
