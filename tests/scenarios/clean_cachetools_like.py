"""Clean: a cachetools-style Cache(maxsize=5000) (it keeps maxsize/currsize), filling up."""

import itertools

EXPECT = "clean"
NOTE = "filling a bounded cache"

_ids = itertools.count()


class Cache:
    """The shape of cachetools.Cache: data, currsize and maxsize kept on the instance."""

    def __init__(self, maxsize):
        self.__data = {}
        self.__currsize = 0
        self.__maxsize = maxsize

    @property
    def maxsize(self):
        return self.__maxsize

    @property
    def currsize(self):
        return self.__currsize

    def __setitem__(self, key, value):
        if key not in self.__data:
            while self.__currsize >= self.__maxsize:
                del self.__data[next(iter(self.__data))]
                self.__currsize -= 1
            self.__currsize += 1
        self.__data[key] = value


_CACHE = Cache(maxsize=5000)


class Profile:
    def __init__(self, n):
        self.n = n


def run():
    n = next(_ids)
    _CACHE[n] = Profile(n)
