"""Imported by import_syntax_error.py: the syntax error below is on purpose."""

for i in range(3):
    print(i
print("never")
