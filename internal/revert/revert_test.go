package revert

import (
	"reflect"
	"testing"
)

func TestFailUndoesInReverseOrderOnce(t *testing.T) {
	var got []int
	r := New()
	for i := 1; i <= 3; i++ {
		r.Add(func() { got = append(got, i) })
	}
	r.Fail()
	r.Fail()
	if !reflect.DeepEqual(got, []int{3, 2, 1}) {
		t.Fatalf("undo order %v", got)
	}
}

func TestSuccessKeepsEverything(t *testing.T) {
	called := false
	r := New()
	r.Add(func() { called = true })
	r.Success()
	r.Fail()
	if called {
		t.Fatal("undo ran after Success")
	}
}
