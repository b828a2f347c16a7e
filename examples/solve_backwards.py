"""The seed questions, answered backwards: which input sizes give the numbers in the models?

Run: python examples/solve_backwards.py
"""
import sympy

import symshape as ss
from symshape import zoo

H, W = ss.symbols("H W")

# Seed 000, case 1: nn.Linear(5408, 10) after a 7x7 stride-2 conv. Which (H, W) fit?
rep = ss.trace(zoo.seed_case1(), (1, 3, H, W))
print("case 1, flatten size:", ss.fmt(rep.layer("2").out_shape[1]))
print("case 1, inputs that give 5408:")
print(rep.valid_inputs())
print("case 1, square inputs:", rep.solve(sympy.Eq(H, W)))
print("case 1, smallest inputs:", list(rep.min_input()))
print("case 1, how:")
print(rep.valid_inputs().explain())

# Seed 000, case 2: three conv-bn-relu-maxpool(2) blocks, then nn.Linear(64*4*4, 10).
rep2 = ss.trace(zoo.seed_case2(), (1, 3, H, W))
flat = rep2.layer("flatten").out_shape[1]
print()
print("case 2, flatten size:", ss.fmt(flat))
print("case 2, inputs that give 64*4*4 = 1024:")
print(ss.solve([sympy.Eq(flat, 64 * 4 * 4)], over=(H, W)))
print("case 2, square inputs:", rep2.solve(sympy.Eq(H, W)))
print("case 2, inputs where no pooling drops a row or column:")
print(rep2.exact_inputs())

# A 50-layer plain network: the largest square input under 1 GMAC, and a 7x7 final map.
rep3 = ss.trace(zoo.plainnet50(), (1, 3, H, W))
budget = ss.solve([rep3.macs <= 10 ** 9, sympy.Eq(H, W)], over=(H, W))
print()
print("plainnet50, square inputs under 1 GMAC:", budget, f"[{budget.method}]")
last = rep3.layers[-4]
print(f"plainnet50, final map {ss.fmt(last.out_shape[2])} = 7:", ss.solve(sympy.Eq(last.out_shape[2], 7), over=H))
