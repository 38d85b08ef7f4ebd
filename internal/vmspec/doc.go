// Package vmspec turns a restore, its recovery point and the host's facts
// into a libvirt domain (*libvirtxml.Domain), as a pipeline of small pure
// configurators in the style of KubeVirt's converter: host facts are
// computed once into a Context, each configurator fills in one concern in
// its own file with its own table test, and golden XML files pin a few whole
// domains. No string templates; no I/O.
package vmspec
