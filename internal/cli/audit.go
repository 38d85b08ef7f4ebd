package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func auditCmd(g *globals) *cobra.Command {
	var (
		req            restorev1.ListAuditEventsRequest
		since, outcome string
		all            bool
		w              watchFlags
	)
	c := &cobra.Command{
		Use:   "audit",
		Short: "Who did what: every accepted write and every refusal (admins and operators see every tenant's; others their own)",
		Example: "  restorectl audit --method DeleteRestore --since 24h\n" +
			"  restorectl audit --target 019a6c2e-... --all --output json\n" +
			"  restorectl audit --watch --outcome refused",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since != "" {
				d, err := time.ParseDuration(since)
				if err != nil || d <= 0 {
					return fmt.Errorf("--since %q: give a duration like 24h", since)
				}
				req.StartTime = timestamppb.New(time.Now().Add(-d))
			}
			switch strings.ToLower(outcome) {
			case "":
			case "accepted":
				req.Outcome = restorev1.AuditOutcome_AUDIT_OUTCOME_ACCEPTED
			case "refused":
				req.Outcome = restorev1.AuditOutcome_AUDIT_OUTCOME_REFUSED
			default:
				return fmt.Errorf("--outcome %q: accepted or refused", outcome)
			}
			if w.on {
				if req.StartTime != nil {
					return fmt.Errorf("--since does not go with --watch (a watch sends every kept event first, or resumes at --resource-version)")
				}
				return streamWatch(g, cmd, w, auditHeader, func(ctx context.Context, conn *grpc.ClientConn) (restorev1.AuditService_WatchAuditEventsClient, error) {
					return restorev1.NewAuditServiceClient(conn).WatchAuditEvents(ctx, &restorev1.WatchAuditEventsRequest{
						Tenant: req.Tenant, Method: req.Method, Outcome: req.Outcome, Target: req.Target, ResourceVersion: w.from})
				}, func(m *restorev1.WatchAuditEventsResponse) []string { return auditRow(m.Event) })
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListAuditEventsResponse, error) {
				client := restorev1.NewAuditServiceClient(conn)
				out := &restorev1.ListAuditEventsResponse{}
				var err error
				out.Events, out.NextPageToken, err = pages(all, req.PageToken, func(token string) ([]*restorev1.AuditEvent, string, error) {
					req.PageToken = token
					resp, err := client.ListAuditEvents(ctx, &req)
					return resp.GetEvents(), resp.GetNextPageToken(), err
				})
				return out, err
			}, func(out *restorev1.ListAuditEventsResponse) error {
				return g.show(out, auditHeader, func() [][]string {
					rows := make([][]string, 0, len(out.Events))
					for _, ev := range out.Events {
						rows = append(rows, auditRow(ev))
					}
					return rows
				})
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&since, "since", "", "only events this recent (a duration: 24h)")
	fl.StringVar(&req.Tenant, "tenant", "", "only this tenant's (admins and operators)")
	fl.StringVar(&req.Method, "method", "", "only this RPC (DeleteRestore, or the full method name)")
	fl.StringVar(&outcome, "outcome", "", "accepted or refused")
	fl.StringVar(&req.Target, "target", "", "only events naming this id")
	fl.Int32Var(&req.PageSize, "page-size", 0, "events per page (default 100, max 1000)")
	fl.StringVar(&req.PageToken, "page-token", "", "continue from a previous page's next_page_token")
	fl.BoolVar(&all, "all", false, "fetch every page")
	w.add(c, "the recorded writes")
	return c
}

var auditHeader = []string{"TIME", "CALLER", "TENANT", "METHOD", "TARGETS", "OUTCOME", "WHY", "SOURCE"}

func auditRow(ev *restorev1.AuditEvent) []string {
	m := ev.Method[strings.LastIndex(ev.Method, "/")+1:]
	why := ev.Code
	if ev.Message != "" {
		why += ": " + ev.Message
	}
	return []string{when(ev.Time), ev.Caller, orDash(ev.Tenant), m, orDash(strings.Join(ev.Targets, ",")),
		trimEnum(ev.Outcome.String(), "AUDIT_OUTCOME_"), orDash(why), orDash(ev.Source)}
}
