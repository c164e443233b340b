package capture

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// helperEnv makes the test binary a client instead of running the tests:
// it connects to the address the variable holds, prints the line the
// server sends, and exits. The namespace tests run it as the proxy's UID.
const helperEnv = "WEFT_CAPTURE_TEST_DIAL"

func TestMain(m *testing.M) {
	if addr := os.Getenv(helperEnv); addr != "" {
		line, err := dialLine(addr)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(line)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// dialLine connects to addr and returns the first line the server sends.
func dialLine(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return readLine(c)
}

func readLine(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading from %v: %w", c.RemoteAddr(), err)
	}
	return strings.TrimSpace(line), nil
}
