package kinds

import "testing"

func TestBridgeNamesAreLinuxInterfaceNamesAsTheXMLCarriesThem(t *testing.T) {
	for name, ok := range map[string]bool{
		"br0": true, "rsti019a6c2e7f3": true, "br-prod.10": true, "a_b": true,
		"": false, "br-0123456789abc": false, "br 0": false, "br/0": false, "\xce": false, "br0\n": false, "br:0": false,
	} {
		if got := ValidBridgeName(name); got != ok {
			t.Errorf("%q: %v, want %v", name, got, ok)
		}
	}
}

func TestDNSLabelsAreWhatTenantAndHostIdsAre(t *testing.T) {
	for s, ok := range map[string]bool{
		"acme": true, "kvm-01": true, "a": true, "0": true,
		"": false, "-acme": false, "acme-": false, "Acme": false, "ac_me": false, "a.b": false,
		"a23456789012345678901234567890123456789012345678901234567890123":  true,
		"a234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		if got := IsDNSLabel(s); got != ok {
			t.Errorf("%q: %v, want %v", s, got, ok)
		}
	}
}
