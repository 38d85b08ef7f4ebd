package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/trend"
)

var (
	vLabels     = []string{"tenant", "asset"}
	vRunsDesc   = prometheus.NewDesc("restored_verification_runs", "Verifications in the trend window (the newest 20) per asset.", vLabels, nil)
	vPassedDesc = prometheus.NewDesc("restored_verification_last_passed", "1 when the asset's newest verification PASSED.", vLabels, nil)
	vRateDesc   = prometheus.NewDesc("restored_verification_pass_ratio", "PASSED runs / runs over the trend window.", vLabels, nil)
	vP50Desc    = prometheus.NewDesc("restored_verification_time_to_boot_p50_seconds", "Time to boot (RTO) p50 over the trend window.", vLabels, nil)
	vP95Desc    = prometheus.NewDesc("restored_verification_time_to_boot_p95_seconds", "Time to boot (RTO) p95 over the trend window.", vLabels, nil)
	vLastDesc   = prometheus.NewDesc("restored_verification_last_time_to_boot_seconds", "The newest run's time to boot.", vLabels, nil)
	vSlowerDesc = prometheus.NewDesc("restored_verification_slower", "1 when the newest run booted much slower than the trend.", vLabels, nil)
	verifyDescs = []*prometheus.Desc{vRunsDesc, vPassedDesc, vRateDesc, vP50Desc, vP95Desc, vLastDesc, vSlowerDesc}
)

// verificationCollector exports each asset's verification trend.
type verificationCollector struct{ st *store.Store }

func (c *verificationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range verifyDescs {
		ch <- d
	}
}

func (c *verificationCollector) Collect(ch chan<- prometheus.Metric) {
	byAsset := map[[2]string][]*restorev1.Verification{}
	for _, v := range c.st.Read(nil).Verifications("") { // newest first
		k := [2]string{v.Tenant, v.Asset}
		byAsset[k] = append(byAsset[k], v)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for k, vs := range byAsset {
		t := trend.Compute(k[0], k[1], vs, trend.DefaultLastN)
		for d, v := range map[*prometheus.Desc]float64{
			vRunsDesc: float64(t.Runs), vPassedDesc: b2f(t.LastVerdict == restorev1.Verdict_VERDICT_PASSED), vRateDesc: t.PassRate,
			vP50Desc: float64(t.TimeToBootP50Ms) / 1000, vP95Desc: float64(t.TimeToBootP95Ms) / 1000,
			vLastDesc: float64(t.LastTimeToBootMs) / 1000, vSlowerDesc: b2f(t.Slower),
		} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, k[0], k[1])
		}
	}
}
