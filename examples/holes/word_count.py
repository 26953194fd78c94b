import sys
from collections import Counter


def word_count(path):
    counts = Counter()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            ⟨⟩
    return counts


if __name__ == "__main__":
    for word, n in word_count(sys.argv[1]).most_common(10):
        print(f"{n:6d} {word}")
