def average(values):
    «total = 0
    count = 0
    for i in range(0, len(values)):
        total = total + values[i]
        count = count + 1»
    return total / count
