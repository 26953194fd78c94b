// Keep a value inside [low, high].
function clamp(value, low, high) {
  if (value < low) {
    return low;
  }
  if (value > high) {
    ⟨⟩
  }
  return value;
}

module.exports = { clamp };
