"""Clean: a lazily created singleton with a big first-call allocation."""

EXPECT = "clean"

_instance = None


class Config:
    def __init__(self):
        self.table = {str(i): [i] for i in range(2000)}


def get_config():
    global _instance
    if _instance is None:
        _instance = Config()
    return _instance


def run():
    get_config().table["7"]
