package cni

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// A DEL cut short (berthd killed while the plugins ran) leaves what the
// next DEL cannot find: the bridge plugin tears down its masquerade rules
// for the addresses it reads off the pod's interface, and once it has
// deleted the interface it finds none. Berth marks each DEL in the cache
// directory before it runs and unmarks it after; a DEL that finds the mark
// (or has no cached result, an ADD cut short) removes what is left itself:
// the pod's masquerade rules and chain (the bridge plugin comments each
// with the network and pod) and the firewall plugin's rules for the pod's
// addresses, when no other pod holds them now.

// delMark is the file marking a DEL of the pod's interface under way.
func (m *Manager) delMark(p Pod, ifName string) string {
	return filepath.Join(m.cfg.CacheDir, "berth-del", p.ID+"-"+ifName)
}

// markDel marks a DEL of the pod's interface; it reports whether an
// earlier one was cut short.
func (m *Manager) markDel(p Pod, ifName string) (cutShort bool) {
	mark := m.delMark(p, ifName)
	if _, err := os.Stat(mark); err == nil {
		return true
	}
	if os.MkdirAll(filepath.Dir(mark), 0o700) == nil {
		_ = os.WriteFile(mark, nil, 0o600)
	}
	return false
}

func (m *Manager) unmarkDel(p Pod, ifName string) { _ = os.Remove(m.delMark(p, ifName)) }

// removeLeftovers removes the bridge plugin's masquerade rules and chain for
// the pod on network, and the firewall plugin's rules for ips that leased
// says no pod holds now.
func removeLeftovers(ctx context.Context, network, podID string, ips []string, leased func(ip string) bool) error {
	comment := fmt.Sprintf(`name: "%s" id: "%s"`, network, podID)
	var errs []string
	for _, ipt := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(ipt); err != nil {
			continue
		}
		nat, err := exec.CommandContext(ctx, ipt, "-w", "-t", "nat", "-S").Output()
		if err != nil {
			continue // no nat table (ip6tables without the module): nothing made there
		}
		// The bridge plugin names the chain for the network and the pod (its
		// utils.FormatChainName); one cut short may have made it empty.
		own := masqChain(network, podID)
		var chains []string
		if slices.Contains(strings.Split(string(nat), "\n"), "-N "+own) {
			chains = append(chains, own)
		}
		for _, l := range strings.Split(string(nat), "\n") {
			args := splitRule(l)
			if len(args) < 2 || args[0] != "-A" || !slices.Contains(args, comment) {
				continue
			}
			if args[1] == "POSTROUTING" {
				if err := run(ctx, ipt, append([]string{"-w", "-t", "nat", "-D"}, args[1:]...)...); err != nil {
					errs = append(errs, err.Error())
				}
			} else if strings.HasPrefix(args[1], "CNI-") && !slices.Contains(chains, args[1]) {
				chains = append(chains, args[1])
			}
		}
		for _, c := range chains {
			if err := run(ctx, ipt, "-w", "-t", "nat", "-F", c); err != nil {
				errs = append(errs, err.Error())
			}
			if err := run(ctx, ipt, "-w", "-t", "nat", "-X", c); err != nil {
				errs = append(errs, err.Error())
			}
		}
		fw, err := exec.CommandContext(ctx, ipt, "-w", "-t", "filter", "-S", "CNI-FORWARD").Output()
		if err != nil {
			continue // no firewall plugin chain
		}
		for _, l := range strings.Split(string(fw), "\n") {
			args := splitRule(l)
			if len(args) < 2 || args[0] != "-A" {
				continue
			}
			for _, ip := range ips {
				host := ip + "/32"
				if strings.Contains(ip, ":") {
					host = ip + "/128"
				}
				if (slices.Contains(args, host)) && !leased(ip) {
					if err := run(ctx, ipt, append([]string{"-w", "-t", "filter", "-D"}, args[1:]...)...); err != nil {
						errs = append(errs, err.Error())
					}
					break
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove the iptables rules a cut-short CNI call left for pod %s: %s", podID, strings.Join(errs, "; "))
	}
	return nil
}

// masqChain is the chain the bridge plugin makes for a pod's masquerading:
// "CNI-" and the first hex digits of the SHA-512 of network and pod ID, 28
// characters in all.
func masqChain(network, podID string) string {
	sum := sha512.Sum512([]byte(network + podID))
	return ("CNI-" + hex.EncodeToString(sum[:]))[:28]
}

func run(ctx context.Context, name string, args ...string) error {
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// splitRule splits a line of `iptables -S` into its arguments: words, and
// double-quoted strings in which a backslash escapes the next character.
func splitRule(l string) []string {
	var out []string
	var cur strings.Builder
	inWord, quoted, escaped := false, false, false
	for _, r := range l {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quoted && r == '\\':
			escaped = true
		case r == '"':
			quoted, inWord = !quoted, true
		case !quoted && (r == ' ' || r == '\t'):
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}
