package api

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPaginateWalksEveryItemOnceInEitherOrder(t *testing.T) {
	id := func(s string) string { return s }
	items := []string{"a", "b", "c", "d", "e"}
	for _, tt := range []struct {
		name  string
		items []string
		o     order
		match func(string) bool
		want  []string
	}{
		{"ascending", items, ascending, nil, items},
		{"newest first", []string{"e", "d", "c", "b", "a"}, newestFirst, nil, []string{"e", "d", "c", "b", "a"}},
		{"filtered", items, ascending, func(s string) bool { return s != "c" }, []string{"a", "b", "d", "e"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			token := ""
			for pages := 0; ; pages++ {
				p, err := paginate(tt.items, id, tt.o, 2, token, tt.match)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p.Items...)
				if p.Next == "" {
					break
				}
				if pages > 10 {
					t.Fatal("paging does not end")
				}
				token = p.Next
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPaginateRefusesTokensItDidNotHandOut(t *testing.T) {
	// The last: a raw restore id (valid base64 of binary junk), found by
	// the every-field suite.
	for _, tok := range []string{"%%%", strings.Repeat("QUFB", 100), "01a231bd-1509-72f7-9f73-0a660a157a6e"} {
		_, err := paginate([]string{"a"}, func(s string) string { return s }, ascending, 1, tok, nil)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "page_token") {
			t.Errorf("token %.10q: %v", tok, err)
		}
	}
	if _, err := paginate([]string{"a"}, func(s string) string { return s }, ascending, -1, "", nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("negative page size: %v", err)
	}
}
