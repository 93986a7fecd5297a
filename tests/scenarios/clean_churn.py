"""Clean: heavy churn, many short-lived objects per call."""

EXPECT = "clean"


class Row:
    def __init__(self, i):
        self.i = i
        self.tags = {"n": i}


def run():
    rows = [Row(i) for i in range(3000)]
    index = {r.i: r for r in rows}
    text = [str(r.i) * 3 for r in rows]
    del rows, index, text
