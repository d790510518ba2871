"""r09: Python's for never calls len() of what it loops over, so a raising __len__ changes nothing."""


class Lazy(list):
    def __len__(self):
        raise TypeError("length unknown")


for x in Lazy([1, 2]):
    print(x)
