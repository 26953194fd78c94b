package stats

// Sum adds up all the values.
func Sum(values []float64) float64 {
	total := 0.0
	for _, v := range values {
		⟨⟩
	}
	return total
}
