"""Import helpers from the script's folder (a module, a package, a latin-1 file) and use their loops."""

import importlib
import inspect
import os

import corpus_pkg
import helpers_latin1
import helpers_mod
from corpus_pkg import train, util

print(helpers_mod.SQUARES, helpers_mod.total(range(5)), helpers_mod.pairs(3))
print(list(helpers_mod.countdown(3)), helpers_mod.first_over([1, 5, 9], 4), helpers_mod.first_over([], 0))
weights = [0.0, 0.0]
for epoch in range(2):
    for batch in util.batches([1, 2, 3, 4, 5], 2):
        helpers_mod.train_step(weights, batch)
    print("epoch", epoch, weights)
print(corpus_pkg.normalize([2, 4]), train.fit([1, 2, 3], 2))
print(helpers_latin1.WORD, helpers_latin1.vowels(helpers_latin1.WORD))

reloaded = importlib.reload(helpers_mod)
print("reloaded", reloaded is helpers_mod, reloaded.total([1, 2]), reloaded.SQUARES)
print(inspect.getsource(helpers_mod.total).splitlines()[2])
print(helpers_mod.total.__code__.co_firstlineno, inspect.getsourcelines(util.batches)[1])
print(os.path.basename(helpers_mod.__file__), helpers_mod.__name__, helpers_mod.__spec__.name)
print(
    type(helpers_mod.__loader__).__mro__[-2].__name__,
    corpus_pkg.__path__[0] == os.path.dirname(util.__file__),
)
