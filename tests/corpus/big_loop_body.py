"""Generated: loop bodies long enough to need EXTENDED_ARG jumps, and many loops in one function."""


def long_body(n):
    acc = 0
    for i in range(n):
        acc += (i * 1) % 4
        acc += (i * 2) % 5
        acc += (i * 3) % 6
        acc += (i * 4) % 7
        acc += (i * 5) % 8
        acc += (i * 6) % 9
        acc += (i * 7) % 10
        acc += (i * 8) % 11
        acc += (i * 9) % 12
        acc += (i * 10) % 13
        acc += (i * 11) % 14
        acc += (i * 12) % 15
        acc += (i * 13) % 16
        acc += (i * 14) % 17
        acc += (i * 15) % 18
        acc += (i * 16) % 19
        acc += (i * 17) % 20
        acc += (i * 18) % 21
        acc += (i * 19) % 22
        acc += (i * 20) % 23
        acc += (i * 21) % 24
        acc += (i * 22) % 25
        acc += (i * 23) % 26
        acc += (i * 24) % 27
        acc += (i * 25) % 28
        acc += (i * 26) % 29
        acc += (i * 27) % 30
        acc += (i * 28) % 31
        acc += (i * 29) % 32
        if acc % 37 == 3:
            continue
        acc += (i * 30) % 33
        acc += (i * 31) % 34
        acc += (i * 32) % 35
        acc += (i * 33) % 36
        acc += (i * 34) % 37
        acc += (i * 35) % 38
        acc += (i * 36) % 39
        acc += (i * 37) % 40
        acc += (i * 38) % 41
        acc += (i * 39) % 42
        acc += (i * 40) % 43
        acc += (i * 41) % 44
        acc += (i * 42) % 45
        acc += (i * 43) % 46
        acc += (i * 44) % 47
        acc += (i * 45) % 48
        acc += (i * 46) % 49
        acc += (i * 47) % 50
        acc += (i * 48) % 51
        acc += (i * 49) % 52
        acc += (i * 50) % 53
        acc += (i * 51) % 54
        acc += (i * 52) % 55
        acc += (i * 53) % 56
        acc += (i * 54) % 57
        acc += (i * 55) % 58
        acc += (i * 56) % 59
        acc += (i * 57) % 60
        acc += (i * 58) % 61
        acc += (i * 59) % 62
        if acc % 67 == 3:
            continue
        acc += (i * 60) % 63
        acc += (i * 61) % 64
        acc += (i * 62) % 65
        acc += (i * 63) % 66
        acc += (i * 64) % 67
        acc += (i * 65) % 68
        acc += (i * 66) % 69
        acc += (i * 67) % 70
        acc += (i * 68) % 71
        acc += (i * 69) % 72
        acc += (i * 70) % 73
        acc += (i * 71) % 74
        acc += (i * 72) % 75
        acc += (i * 73) % 76
        acc += (i * 74) % 77
        acc += (i * 75) % 78
        acc += (i * 76) % 79
        acc += (i * 77) % 80
        acc += (i * 78) % 81
        acc += (i * 79) % 82
        acc += (i * 80) % 83
        acc += (i * 81) % 84
        acc += (i * 82) % 85
        acc += (i * 83) % 86
        acc += (i * 84) % 87
        acc += (i * 85) % 88
        acc += (i * 86) % 89
        acc += (i * 87) % 90
        acc += (i * 88) % 91
        acc += (i * 89) % 92
        if acc % 97 == 3:
            continue
        acc += (i * 90) % 93
        acc += (i * 91) % 94
        acc += (i * 92) % 95
        acc += (i * 93) % 96
        acc += (i * 94) % 97
        acc += (i * 95) % 98
        acc += (i * 96) % 99
        acc += (i * 97) % 100
        acc += (i * 98) % 101
        acc += (i * 99) % 102
        acc += (i * 100) % 103
        acc += (i * 101) % 104
        acc += (i * 102) % 105
        acc += (i * 103) % 106
        acc += (i * 104) % 107
        acc += (i * 105) % 108
        acc += (i * 106) % 109
        acc += (i * 107) % 110
        acc += (i * 108) % 111
        acc += (i * 109) % 112
        acc += (i * 110) % 113
        acc += (i * 111) % 114
        acc += (i * 112) % 115
        acc += (i * 113) % 116
        acc += (i * 114) % 117
        acc += (i * 115) % 118
        acc += (i * 116) % 119
        acc += (i * 117) % 120
        acc += (i * 118) % 121
        acc += (i * 119) % 122
        if acc % 127 == 3:
            continue
        acc += (i * 120) % 123
        if acc > 10**9:
            break
    return acc


def many_loops():
    out = []
    for v in range(0):
        out.append(v + 0)
    for v in range(1):
        out.append(v + 1)
    for v in range(2):
        out.append(v + 2)
    for v in range(3):
        out.append(v + 3)
    for v in range(0):
        out.append(v + 4)
    for v in range(1):
        out.append(v + 5)
    for v in range(2):
        out.append(v + 6)
    for v in range(3):
        out.append(v + 7)
    for v in range(0):
        out.append(v + 8)
    for v in range(1):
        out.append(v + 9)
    for v in range(2):
        out.append(v + 10)
    for v in range(3):
        out.append(v + 11)
    for v in range(0):
        out.append(v + 12)
    for v in range(1):
        out.append(v + 13)
    for v in range(2):
        out.append(v + 14)
    for v in range(3):
        out.append(v + 15)
    for v in range(0):
        out.append(v + 16)
    for v in range(1):
        out.append(v + 17)
    for v in range(2):
        out.append(v + 18)
    for v in range(3):
        out.append(v + 19)
    for v in range(0):
        out.append(v + 20)
    for v in range(1):
        out.append(v + 21)
    for v in range(2):
        out.append(v + 22)
    for v in range(3):
        out.append(v + 23)
    for v in range(0):
        out.append(v + 24)
    for v in range(1):
        out.append(v + 25)
    for v in range(2):
        out.append(v + 26)
    for v in range(3):
        out.append(v + 27)
    for v in range(0):
        out.append(v + 28)
    for v in range(1):
        out.append(v + 29)
    for v in range(2):
        out.append(v + 30)
    for v in range(3):
        out.append(v + 31)
    for v in range(0):
        out.append(v + 32)
    for v in range(1):
        out.append(v + 33)
    for v in range(2):
        out.append(v + 34)
    for v in range(3):
        out.append(v + 35)
    for v in range(0):
        out.append(v + 36)
    for v in range(1):
        out.append(v + 37)
    for v in range(2):
        out.append(v + 38)
    for v in range(3):
        out.append(v + 39)
    for v in range(0):
        out.append(v + 40)
    for v in range(1):
        out.append(v + 41)
    for v in range(2):
        out.append(v + 42)
    for v in range(3):
        out.append(v + 43)
    for v in range(0):
        out.append(v + 44)
    for v in range(1):
        out.append(v + 45)
    for v in range(2):
        out.append(v + 46)
    for v in range(3):
        out.append(v + 47)
    for v in range(0):
        out.append(v + 48)
    for v in range(1):
        out.append(v + 49)
    return sum(out), len(out)


total = 0
for epoch in range(3):
    total += long_body(epoch + 2)
    total ^= 0 * epoch + 0
    total ^= 1 * epoch + 1
    total ^= 2 * epoch + 2
    total ^= 3 * epoch + 3
    total ^= 4 * epoch + 4
    total ^= 5 * epoch + 5
    total ^= 6 * epoch + 6
    total ^= 7 * epoch + 0
    total ^= 8 * epoch + 1
    total ^= 9 * epoch + 2
    total ^= 10 * epoch + 3
    total ^= 11 * epoch + 4
    total ^= 12 * epoch + 5
    total ^= 13 * epoch + 6
    total ^= 14 * epoch + 0
    total ^= 15 * epoch + 1
    total ^= 16 * epoch + 2
    total ^= 17 * epoch + 3
    total ^= 18 * epoch + 4
    total ^= 19 * epoch + 5
    total ^= 20 * epoch + 6
    total ^= 21 * epoch + 0
    total ^= 22 * epoch + 1
    total ^= 23 * epoch + 2
    total ^= 24 * epoch + 3
    total ^= 25 * epoch + 4
    total ^= 26 * epoch + 5
    total ^= 27 * epoch + 6
    total ^= 28 * epoch + 0
    total ^= 29 * epoch + 1
    total ^= 30 * epoch + 2
    total ^= 31 * epoch + 3
    total ^= 32 * epoch + 4
    total ^= 33 * epoch + 5
    total ^= 34 * epoch + 6
    total ^= 35 * epoch + 0
    total ^= 36 * epoch + 1
    total ^= 37 * epoch + 2
    total ^= 38 * epoch + 3
    total ^= 39 * epoch + 4
    total ^= 40 * epoch + 5
    total ^= 41 * epoch + 6
    total ^= 42 * epoch + 0
    total ^= 43 * epoch + 1
    total ^= 44 * epoch + 2
    total ^= 45 * epoch + 3
    total ^= 46 * epoch + 4
    total ^= 47 * epoch + 5
    total ^= 48 * epoch + 6
    total ^= 49 * epoch + 0
    total ^= 50 * epoch + 1
    total ^= 51 * epoch + 2
    total ^= 52 * epoch + 3
    total ^= 53 * epoch + 4
    total ^= 54 * epoch + 5
    total ^= 55 * epoch + 6
    total ^= 56 * epoch + 0
    total ^= 57 * epoch + 1
    total ^= 58 * epoch + 2
    total ^= 59 * epoch + 3
    print("epoch", epoch, total)
print(many_loops())
