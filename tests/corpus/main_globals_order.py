"""r11: __main__'s globals in the interpreter's order (scripts print or iterate globals())."""

print(list(globals()))
