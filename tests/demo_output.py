"""What `make demo` must print: the cosine similarities of the real MiniLM.

Used by tests/test_demo.py and by .ci/run on the output of a newcomer's
`make demo` (python tests/demo_output.py LOG).
"""

import sys

# Reference values from an independent numpy forward of the same weights
# (sentence-transformers reports the same pairs at 0.755 and 0.901).
PARAPHRASE_FOOD = 0.755
PARAPHRASE_MOVIE = 0.901
TOLERANCE = 0.01
UNRELATED_BELOW = 0.15


def similarity_rows(output):
    """The 6x6 matrix printed after 'cosine similarity' ('[i] v v v v v v  sentence')."""
    rows = [line.split() for line in output.splitlines() if line.strip().startswith("[")]
    return [[float(v) for v in row[1:7]] for row in rows]


def check(output):
    """Raise AssertionError unless `output` holds the expected similarities."""
    matrix = similarity_rows(output)
    assert len(matrix) == 6 and all(len(row) == 6 for row in matrix), output
    assert abs(matrix[0][1] - PARAPHRASE_FOOD) <= TOLERANCE, matrix[0]
    assert abs(matrix[2][3] - PARAPHRASE_MOVIE) <= TOLERANCE, matrix[2]
    assert max(abs(matrix[0][k]) for k in (2, 3, 4, 5)) < UNRELATED_BELOW, matrix[0]
    assert all(abs(matrix[i][i] - 1) <= TOLERANCE for i in range(6)), matrix


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        check(f.read())
    print("demo output: paraphrase and unrelated similarities as expected")
