def is_palindrome(text: str) -> bool:
    cleaned = [c.lower() for c in text if c.isalnum()]
    return ⟨⟩


assert is_palindrome("Était-ce à Noël ? Léon, à ce tiÉ")
