package api

import (
	"fmt"
	"net/http"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/auth"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
)

// Prefixes of the methods anyone may call (no token).
const (
	healthPrefix     = "/grpc.health.v1.Health/"
	reflectionPrefix = "/grpc.reflection."
)

type roles map[auth.Role]bool

func allow(rs ...auth.Role) roles {
	m := roles{}
	for _, r := range rs {
		m[r] = true
	}
	return m
}

// where says which server answers a method.
type where uint8

const (
	// anyServer: the server the caller reached answers (a stale read;
	// linearizable when the caller asks, through the leader).
	anyServer where = iota + 1
	// onLeader: the call is forwarded to the leader: every write, and
	// heartbeats (which live in the leader's memory).
	onLeader
)

// by is how a method's caller proves who it is.
type by uint8

const (
	// byToken: a bearer token (partners, operators, backup jobs, admins).
	byToken by = iota + 1
	// byTokenAndServerCert: an admin token from a server of this cluster
	// (its TLS certificate): server-only RPCs refuse agents and everyone else.
	byTokenAndServerCert
	// byAgentCert: an agent's TLS certificate, which names its host.
	byAgentCert
	// byServerCert: a server of this cluster, by its certificate alone
	// (server-to-server calls that act for no token).
	byServerCert
	// byJoinToken: a one-time join token in the request itself (an agent's
	// first contact, before it has a certificate).
	byJoinToken
)

// rule is one method's authorization and where it runs.
type rule struct {
	roles roles
	where where
	by    by
}

var (
	restoreUsers = allow(auth.RoleAdmin, auth.RoleOperator, auth.RolePartner)
	rpReaders    = allow(auth.RoleAdmin, auth.RoleOperator, auth.RolePartner, auth.RoleBackup)
	hostUsers    = allow(auth.RoleAdmin, auth.RoleOperator)
	guestUsers   = allow(auth.RoleAdmin, auth.RoleOperator, auth.RolePartner, auth.RoleBackup)
	// Snapshots export a guest's disks: only its own tenant's backup jobs
	// and partner portal take them.
	snapshotUsers = allow(auth.RolePartner, auth.RoleBackup)
	admins        = allow(auth.RoleAdmin)
	agents        = allow(auth.RoleAgent)
	servers       = allow(auth.RoleServer)
	// Audit events: admins and operators see every tenant's, partners and
	// backup jobs their own tenant's.
	auditReaders = allow(auth.RoleAdmin, auth.RoleOperator, auth.RolePartner, auth.RoleBackup)
	// A tenant's quota and usage: admins and operators every tenant's,
	// partners and backup jobs their own.
	tenantReaders = allow(auth.RoleAdmin, auth.RoleOperator, auth.RolePartner, auth.RoleBackup)
	// Every bearer token may rotate itself (admins any token).
	tokenHolders = allow(auth.RoleAdmin, auth.RoleOperator, auth.RolePartner, auth.RoleBackup, auth.RoleAgent)
)

// rules holds every RPC of every service, keyed by the generated method
// names. A method missing here is refused for everyone (deny by default);
// a test checks that every RPC has exactly one rule.
var rules = map[string]rule{
	restorev1.RestoreService_CreateRestore_FullMethodName:           {restoreUsers, onLeader, byToken},
	restorev1.RestoreService_GetRestore_FullMethodName:              {restoreUsers, anyServer, byToken},
	restorev1.RestoreService_ListRestores_FullMethodName:            {restoreUsers, anyServer, byToken},
	restorev1.RestoreService_DeleteRestore_FullMethodName:           {restoreUsers, onLeader, byToken},
	restorev1.RestoreService_LinkUpRestore_FullMethodName:           {restoreUsers, onLeader, byToken},
	restorev1.RestoreService_WatchRestores_FullMethodName:           {restoreUsers, anyServer, byToken},
	restorev1.RestoreService_GetRestoreScreenshot_FullMethodName:    {restoreUsers, anyServer, byToken},
	restorev1.RestoreService_CreateConsole_FullMethodName:           {restoreUsers, anyServer, byToken},
	restorev1.RestoreService_IssueRestoreCredentials_FullMethodName: {restoreUsers, anyServer, byToken},
	restorev1.RestoreService_ExportImage_FullMethodName:             {restoreUsers, onLeader, byToken},
	restorev1.RestoreService_CreateDownload_FullMethodName:          {restoreUsers, anyServer, byToken},
	restorev1.RestoreService_BatchCreateRestores_FullMethodName:     {restoreUsers, onLeader, byToken},
	// Promotion puts a VM on the host's production storage: the hoster's
	// call.
	restorev1.RestoreService_PromoteRestore_FullMethodName:  {hostUsers, onLeader, byToken},
	restorev1.RestoreService_CancelPromotion_FullMethodName: {hostUsers, onLeader, byToken},

	restorev1.RecoveryPointService_ListRecoveryPoints_FullMethodName: {rpReaders, anyServer, byToken},
	// File-level restore reads a tenant's files: its partner portal and
	// the operators, not backup jobs.
	restorev1.RecoveryPointService_ListRecoveryPointFiles_FullMethodName: {restoreUsers, anyServer, byToken},
	restorev1.RecoveryPointService_CreateFileDownload_FullMethodName:     {restoreUsers, anyServer, byToken},
	restorev1.RecoveryPointService_CreateFileBrowser_FullMethodName:      {restoreUsers, anyServer, byToken},
	restorev1.RecoveryPointService_GetRecoveryPoint_FullMethodName:       {rpReaders, anyServer, byToken},

	restorev1.VerificationService_ListVerifications_FullMethodName:         {restoreUsers, anyServer, byToken},
	restorev1.VerificationService_WatchVerifications_FullMethodName:        {restoreUsers, anyServer, byToken},
	restorev1.VerificationService_GetVerification_FullMethodName:           {restoreUsers, anyServer, byToken},
	restorev1.VerificationService_GetVerificationScreenshot_FullMethodName: {restoreUsers, anyServer, byToken},

	restorev1.VerificationPolicyService_RunVerification_FullMethodName:          {restoreUsers, onLeader, byToken},
	restorev1.VerificationPolicyService_SetVerificationPolicy_FullMethodName:    {restoreUsers, onLeader, byToken},
	restorev1.VerificationPolicyService_ListVerificationPolicies_FullMethodName: {restoreUsers, anyServer, byToken},
	restorev1.VerificationPolicyService_DeleteVerificationPolicy_FullMethodName: {restoreUsers, onLeader, byToken},
	restorev1.VerificationPolicyService_GetVerificationTrend_FullMethodName:     {restoreUsers, anyServer, byToken},

	restorev1.GuestService_RegisterGuest_FullMethodName:   {hostUsers, onLeader, byToken},
	restorev1.GuestService_GetGuest_FullMethodName:        {guestUsers, anyServer, byToken},
	restorev1.GuestService_ListGuests_FullMethodName:      {guestUsers, anyServer, byToken},
	restorev1.GuestService_UnregisterGuest_FullMethodName: {hostUsers, onLeader, byToken},

	restorev1.SnapshotService_CreateSnapshot_FullMethodName:           {snapshotUsers, onLeader, byToken},
	restorev1.SnapshotService_GetSnapshot_FullMethodName:              {snapshotUsers, anyServer, byToken},
	restorev1.SnapshotService_ListSnapshots_FullMethodName:            {snapshotUsers, anyServer, byToken},
	restorev1.SnapshotService_WatchSnapshots_FullMethodName:           {snapshotUsers, anyServer, byToken},
	restorev1.SnapshotService_ListSnapshotExtents_FullMethodName:      {snapshotUsers, anyServer, byToken},
	restorev1.SnapshotService_IssueSnapshotCredentials_FullMethodName: {snapshotUsers, anyServer, byToken},
	restorev1.SnapshotService_DeleteSnapshot_FullMethodName:           {snapshotUsers, onLeader, byToken},

	restorev1.HostService_ListHosts_FullMethodName:       {hostUsers, anyServer, byToken},
	restorev1.HostService_WatchHosts_FullMethodName:      {hostUsers, anyServer, byToken},
	restorev1.HostService_GetHost_FullMethodName:         {hostUsers, anyServer, byToken},
	restorev1.HostService_DrainHost_FullMethodName:       {hostUsers, onLeader, byToken},
	restorev1.HostService_UndrainHost_FullMethodName:     {hostUsers, onLeader, byToken},
	restorev1.HostService_CreateJoinToken_FullMethodName: {hostUsers, onLeader, byToken},
	restorev1.HostService_RemoveHost_FullMethodName:      {hostUsers, onLeader, byToken},
	restorev1.HostService_ListHostDomains_FullMethodName: {hostUsers, anyServer, byToken},

	restorev1.AdminService_CreateTenant_FullMethodName:   {admins, onLeader, byToken},
	restorev1.AdminService_ListTenants_FullMethodName:    {admins, anyServer, byToken},
	restorev1.AdminService_GetTenant_FullMethodName:      {tenantReaders, anyServer, byToken},
	restorev1.AdminService_SetTenantQuota_FullMethodName: {admins, onLeader, byToken},
	restorev1.AdminService_CreateToken_FullMethodName:    {admins, onLeader, byToken},
	restorev1.AdminService_ListTokens_FullMethodName:     {admins, anyServer, byToken},
	restorev1.AdminService_RevokeToken_FullMethodName:    {admins, onLeader, byToken},
	restorev1.AdminService_RotateToken_FullMethodName:    {tokenHolders, onLeader, byToken},
	restorev1.AdminService_GetCluster_FullMethodName:     {admins, anyServer, byToken},

	restorev1.AgentService_Register_FullMethodName:             {agents, onLeader, byAgentCert},
	restorev1.AgentService_Heartbeat_FullMethodName:            {agents, onLeader, byAgentCert},
	restorev1.AgentService_WatchAssignments_FullMethodName:     {agents, anyServer, byAgentCert},
	restorev1.AgentService_ReportRestoreStatus_FullMethodName:  {agents, onLeader, byAgentCert},
	restorev1.AgentService_ReportRecoveryPoints_FullMethodName: {agents, onLeader, byAgentCert},
	restorev1.AgentService_ReportInventory_FullMethodName:      {agents, onLeader, byAgentCert},
	restorev1.AgentService_ReportSnapshotStatus_FullMethodName: {agents, onLeader, byAgentCert},
	restorev1.AgentService_Tunnel_FullMethodName:               {agents, anyServer, byAgentCert},

	restorev1.AgentService_Enroll_FullMethodName:           {agents, onLeader, byJoinToken},
	restorev1.AgentService_RenewCertificate_FullMethodName: {agents, anyServer, byAgentCert},

	restorev1.AuditService_ListAuditEvents_FullMethodName:  {auditReaders, anyServer, byToken},
	restorev1.AuditService_WatchAuditEvents_FullMethodName: {auditReaders, anyServer, byToken},
	raftv1.ClusterService_Join_FullMethodName:              {admins, onLeader, byTokenAndServerCert},
	raftv1.ClusterService_Enroll_FullMethodName:            {admins, anyServer, byToken},
	raftv1.ClusterService_Relay_FullMethodName:             {servers, anyServer, byServerCert},
	raftv1.ClusterService_ReportTokenUse_FullMethodName:    {servers, onLeader, byServerCert},
}

// allowed says whether role may call method.
func allowed(method string, role auth.Role) bool { return rules[method].roles[role] }

// leaderOnly says whether method must run on the leader.
func leaderOnly(method string) bool { return rules[method].where == onLeader }

// metricsReaders may scrape /metrics: its labels name every tenant and
// asset, so no tenant's token may read it.
var metricsReaders = allow(auth.RoleAdmin, auth.RoleOperator)

// MetricsHandler serves h to a caller whose bearer token is an admin's or
// an operator's: 401 without a valid token, 403 for any other role.
func (d *Deps) MetricsHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := d.bearer(auth.BearerFrom(r.Header.Get("Authorization")))
		switch {
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="restored"`)
			http.Error(w, "/metrics takes an admin or operator bearer token", http.StatusUnauthorized)
		case !metricsReaders[p.Role]:
			http.Error(w, fmt.Sprintf("role %q may not read /metrics (it names every tenant): use an admin or operator token", p.Role), http.StatusForbidden)
		default:
			h.ServeHTTP(w, r)
		}
	})
}
