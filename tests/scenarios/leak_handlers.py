"""Leak: an event handler (a closure) registered per call and never removed."""

EXPECT = "leak"
TYPES = ("function", "cell", "leak_handlers.Widget")
HOLDER = "_handlers"


class EventBus:
    def __init__(self):
        self._handlers = []

    def subscribe(self, handler):
        self._handlers.append(handler)


BUS = EventBus()


class Widget:
    def __init__(self):
        self.clicks = 0

        def on_click(event):
            self.clicks += 1

        BUS.subscribe(on_click)


def run():
    Widget()
