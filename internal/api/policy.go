package api

import (
	"github.com/restored/restored/internal/auth"
)

// Full gRPC method names.
const (
	mCreateRestore   = "/restore.v1.RestoreService/CreateRestore"
	mGetRestore      = "/restore.v1.RestoreService/GetRestore"
	mListRestores    = "/restore.v1.RestoreService/ListRestores"
	mDeleteRestore   = "/restore.v1.RestoreService/DeleteRestore"
	mWatchRestores   = "/restore.v1.RestoreService/WatchRestores"
	mRestoreShot     = "/restore.v1.RestoreService/GetRestoreScreenshot"
	mConsole         = "/restore.v1.RestoreService/CreateConsole"
	mVerifShot       = "/restore.v1.VerificationService/GetVerificationScreenshot"
	mListRPs         = "/restore.v1.RecoveryPointService/ListRecoveryPoints"
	mGetRP           = "/restore.v1.RecoveryPointService/GetRecoveryPoint"
	mListVerifs      = "/restore.v1.VerificationService/ListVerifications"
	mGetVerif        = "/restore.v1.VerificationService/GetVerification"
	mRunVerif        = "/restore.v1.VerificationPolicyService/RunVerification"
	mSetPolicy       = "/restore.v1.VerificationPolicyService/SetVerificationPolicy"
	mListPolicies    = "/restore.v1.VerificationPolicyService/ListVerificationPolicies"
	mDeletePolicy    = "/restore.v1.VerificationPolicyService/DeleteVerificationPolicy"
	mTrend           = "/restore.v1.VerificationPolicyService/GetVerificationTrend"
	mRegisterGuest   = "/restore.v1.GuestService/RegisterGuest"
	mGetGuest        = "/restore.v1.GuestService/GetGuest"
	mListGuests      = "/restore.v1.GuestService/ListGuests"
	mUnregisterGuest = "/restore.v1.GuestService/UnregisterGuest"
	mCreateSnapshot  = "/restore.v1.SnapshotService/CreateSnapshot"
	mGetSnapshot     = "/restore.v1.SnapshotService/GetSnapshot"
	mListSnapshots   = "/restore.v1.SnapshotService/ListSnapshots"
	mListExtents     = "/restore.v1.SnapshotService/ListSnapshotExtents"
	mDeleteSnapshot  = "/restore.v1.SnapshotService/DeleteSnapshot"
	mReportSnapshot  = "/restore.v1.AgentService/ReportSnapshotStatus"
	mListHosts       = "/restore.v1.HostService/ListHosts"
	mGetHost         = "/restore.v1.HostService/GetHost"
	mDrainHost       = "/restore.v1.HostService/DrainHost"
	mUndrainHost     = "/restore.v1.HostService/UndrainHost"
	mCreateTenant    = "/restore.v1.AdminService/CreateTenant"
	mListTenants     = "/restore.v1.AdminService/ListTenants"
	mCreateToken     = "/restore.v1.AdminService/CreateToken"
	mListTokens      = "/restore.v1.AdminService/ListTokens"
	mRevokeToken     = "/restore.v1.AdminService/RevokeToken"
	mGetCluster      = "/restore.v1.AdminService/GetCluster"
	mRegister        = "/restore.v1.AgentService/Register"
	mHeartbeat       = "/restore.v1.AgentService/Heartbeat"
	mWatchAssign     = "/restore.v1.AgentService/WatchAssignments"
	mReportStatus    = "/restore.v1.AgentService/ReportRestoreStatus"
	mReportRPs       = "/restore.v1.AgentService/ReportRecoveryPoints"
	mTunnel          = "/restore.v1.AgentService/Tunnel"
	mJoin            = "/restored.raft.v1.ClusterService/Join"
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
)

// policy says which roles may call each method. A method missing here is
// refused for everyone (deny by default).
var policy = map[string]roles{
	mCreateRestore:   restoreUsers,
	mGetRestore:      restoreUsers,
	mListRestores:    restoreUsers,
	mDeleteRestore:   restoreUsers,
	mWatchRestores:   restoreUsers,
	mRestoreShot:     restoreUsers,
	mConsole:         restoreUsers,
	mVerifShot:       restoreUsers,
	mListRPs:         rpReaders,
	mGetRP:           rpReaders,
	mListVerifs:      restoreUsers,
	mGetVerif:        restoreUsers,
	mRunVerif:        restoreUsers,
	mSetPolicy:       restoreUsers,
	mListPolicies:    restoreUsers,
	mDeletePolicy:    restoreUsers,
	mTrend:           restoreUsers,
	mRegisterGuest:   guestUsers,
	mGetGuest:        guestUsers,
	mListGuests:      guestUsers,
	mUnregisterGuest: guestUsers,
	mCreateSnapshot:  snapshotUsers,
	mGetSnapshot:     snapshotUsers,
	mListSnapshots:   snapshotUsers,
	mListExtents:     snapshotUsers,
	mDeleteSnapshot:  snapshotUsers,
	mReportSnapshot:  agents,
	mListHosts:       hostUsers,
	mGetHost:         hostUsers,
	mDrainHost:       hostUsers,
	mUndrainHost:     hostUsers,
	mCreateTenant:    admins,
	mListTenants:     admins,
	mCreateToken:     admins,
	mListTokens:      admins,
	mRevokeToken:     admins,
	mGetCluster:      admins,
	mRegister:        agents,
	mHeartbeat:       agents,
	mWatchAssign:     agents,
	mReportStatus:    agents,
	mReportRPs:       agents,
	mTunnel:          agents,
	mJoin:            admins,
}

// leaderOnly methods run on the leader: every write, and heartbeats (which
// live in the leader's memory).
var leaderOnly = map[string]bool{
	mCreateRestore: true, mDeleteRestore: true, mDrainHost: true, mUndrainHost: true,
	mCreateTenant: true, mCreateToken: true, mRevokeToken: true,
	mRegister: true, mHeartbeat: true, mReportStatus: true, mReportRPs: true, mJoin: true,
	mRunVerif: true, mSetPolicy: true, mDeletePolicy: true,
	mRegisterGuest: true, mUnregisterGuest: true,
	mCreateSnapshot: true, mDeleteSnapshot: true, mReportSnapshot: true,
}
