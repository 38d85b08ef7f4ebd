package api

import (
	"encoding/base64"

	"github.com/restored/restored/internal/validate"
)

// order is how a list is sorted by id.
type order int

const (
	// ascending: smallest id first.
	ascending order = iota
	// newestFirst: largest (newest UUIDv7) id first.
	newestFirst
)

// listPage is one page of a list call.
type listPage[T any] struct {
	Items []T
	// Next is the next page's token, "" on the last page.
	Next string
}

// paginate cuts the page a list call asks for (page_size, page_token) from
// items, which are sorted by id in order, keeping those match accepts (nil:
// all). The token is the last id of the previous page, so a page is stable
// while objects come and go.
func paginate[T any](items []T, id func(T) string, o order, pageSize int32, token string, match func(T) bool) (listPage[T], error) {
	size, err := validate.PageSize(pageSize)
	if err != nil {
		return listPage[T]{}, err
	}
	after, err := decodePageToken(token)
	if err != nil {
		return listPage[T]{}, err
	}
	var out listPage[T]
	for _, x := range items {
		if after != "" && ((o == ascending && id(x) <= after) || (o == newestFirst && id(x) >= after)) {
			continue
		}
		if match != nil && !match(x) {
			continue
		}
		if len(out.Items) == size {
			out.Next = encodePageToken(id(out.Items[size-1]))
			break
		}
		out.Items = append(out.Items, x)
	}
	return out, nil
}

func decodePageToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	// A token this server made holds an id: printable text, never bytes.
	if err != nil || len(b) == 0 || len(b) > validate.MaxNameLen || validate.Optional("page_token", string(b)) != nil {
		return "", validate.Errorf("page_token is not one this server handed out; pass next_page_token from the previous page")
	}
	return string(b), nil
}

func encodePageToken(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }
