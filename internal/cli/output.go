package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// printJSON writes a message as indented JSON with proto field names, with
// stable spacing (protojson varies its whitespace on purpose).
func (g *globals) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}.Marshal(m)
	if err != nil {
		return err
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return err
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return err
	}
	_, err = fmt.Fprintln(g.out, out.String())
	return err
}

// table writes rows under a header.
func (g *globals) table(header []string, rows [][]string) error {
	w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}

// show prints m as JSON, or as a table built by rows.
func (g *globals) show(m proto.Message, header []string, rows func() [][]string) error {
	if g.output == "json" {
		return g.printJSON(m)
	}
	return g.table(header, rows())
}

func when(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

// trimEnum drops the buf prefix: RESTORE_STATE_RUNNING → RUNNING.
func trimEnum(s, prefix string) string { return strings.TrimPrefix(s, prefix) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printJSONValue writes a plain Go value as indented JSON.
func printJSONValue(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
