package consoleweb

import (
	"io"

	"github.com/restored/restored/internal/tunnel"
)

// relay copies both ways until either side ends, then closes both.
func relay(browser io.ReadWriteCloser, ch *tunnel.Channel) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(browser, ch); done <- struct{}{} }()
	go func() { _, _ = io.Copy(ch, browser); done <- struct{}{} }()
	<-done
	browser.Close()
	_ = ch.Close()
	<-done
}
