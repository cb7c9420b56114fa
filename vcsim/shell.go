package main

// A scripted guest shell: what StartProgramInGuest runs (as VMware Tools on a Linux guest runs a
// program: through /bin/sh -c with the program path and its arguments) and what a line typed on
// the simulated console runs when Return is pressed. It is not a real shell and never runs a host
// command: a handful of commands work on the VM's sandbox directory (guest.go), which stands for
// the guest's file system.
//
//	test / [ (-e -f -d -s -n -z, = !=, -eq -ne -lt -le -gt -ge, !), cat, touch, echo [-n],
//	grep [-qivFEc] PATTERN FILE..., mkdir [-p], rm [-f], cd, pwd, sleep N, exit N, true, false,
//	sh|bash -c SCRIPT, sh|bash FILE, vmtoolsd --cmd "info-get guestinfo.X", vmware-rpctool "info-get
//	guestinfo.X" (guestinfo.go)
//
// Syntax: words with '...', "..." and \ quoting; $NAME and ${NAME} from the program's environment;
// ';', newlines, '&&' and '||'; redirections > >> 2> 2>> 2>&1 >&2 1>&2 &>; # comments. Pipes,
// background jobs, input redirection and $(...) are refused with exit status 2.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Exit statuses as a POSIX shell reports them.
const (
	statusSyntax     = 2
	statusNotFound   = 127
	statusTerminated = 143 // 128 + SIGTERM: what TerminateProcessInGuest leaves
)

// programDirs are where the simulated programs live, for a programPath or a command with a '/'.
var programDirs = map[string]bool{"/bin": true, "/usr/bin": true, "/sbin": true, "/usr/sbin": true, "/usr/local/bin": true}

var builtins = map[string]bool{
	"test": true, "[": true, "cat": true, "touch": true, "echo": true, "grep": true, "mkdir": true,
	"rm": true, "cd": true, "pwd": true, "sleep": true, "exit": true, "true": true, "false": true,
	"sh": true, "bash": true, "vmtoolsd": true, "vmware-rpctool": true,
}

// programName is the simulated command a path or name stands for, or "" if there is none.
func programName(name string) string {
	if strings.Contains(name, "/") {
		dir, base := path.Split(path.Clean(name))
		if !programDirs[strings.TrimSuffix(dir, "/")] {
			return ""
		}
		name = base
	}
	if builtins[name] {
		return name
	}
	return ""
}

// guestFS maps guest paths into a VM's sandbox directory; nothing can leave it.
type guestFS struct {
	root string
	vm   string // the VM's moref value (for guestinfo.go)
}

func (fs guestFS) host(guestPath, cwd string) string {
	if !path.IsAbs(guestPath) {
		guestPath = path.Join(cwd, guestPath)
	}
	return filepath.Join(fs.root, filepath.FromSlash(path.Clean("/"+guestPath)))
}

type shell struct {
	fs   guestFS
	cwd  string
	env  map[string]string
	ctx  context.Context // cancelled when the process is terminated
	name string          // "sh", for messages
}

type token struct {
	kind string // "word", "op" (; && ||), "redir" (> >> 2> 2>> 2>&1 >&2 &>)
	text string
}

type exitRequest struct{ status int }

func (e exitRequest) Error() string { return fmt.Sprintf("exit %d", e.status) }

func (sh *shell) lookup(name string) string {
	if value, ok := sh.env[name]; ok {
		return value
	}
	return ""
}

// tokenize splits a script into words, operators and redirections, expanding variables.
func (sh *shell) tokenize(script string) ([]token, error) {
	var tokens []token
	var word strings.Builder
	inWord := false
	runes := []rune(script)
	flush := func() {
		if inWord {
			tokens = append(tokens, token{"word", word.String()})
			word.Reset()
			inWord = false
		}
	}
	expand := func(i int) int { // runes[i] == '$'; returns the index of the last rune used
		if i+1 < len(runes) && runes[i+1] == '{' {
			end := strings.IndexRune(string(runes[i+2:]), '}')
			if end < 0 {
				word.WriteRune('$')
				return i
			}
			word.WriteString(sh.lookup(string(runes[i+2 : i+2+end])))
			return i + 2 + end
		}
		j := i + 1
		for j < len(runes) && (runes[j] == '_' || runes[j] >= 'a' && runes[j] <= 'z' || runes[j] >= 'A' && runes[j] <= 'Z' || j > i+1 && runes[j] >= '0' && runes[j] <= '9') {
			j++
		}
		if j == i+1 {
			if j < len(runes) && runes[j] == '(' {
				return -1
			}
			word.WriteRune('$')
			return i
		}
		word.WriteString(sh.lookup(string(runes[i+1 : j])))
		return j - 1
	}
	for i := 0; i < len(runes); i++ {
		c := runes[i]
		next := rune(0)
		if i+1 < len(runes) {
			next = runes[i+1]
		}
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			flush()
		case c == '#' && !inWord:
			for i < len(runes) && runes[i] != '\n' {
				i++
			}
			i--
		case c == '\n' || c == ';':
			flush()
			tokens = append(tokens, token{"op", ";"})
		case c == '&' && next == '&':
			flush()
			tokens = append(tokens, token{"op", "&&"})
			i++
		case c == '|' && next == '|':
			flush()
			tokens = append(tokens, token{"op", "||"})
			i++
		case c == '&' && next == '>':
			flush()
			tokens = append(tokens, token{"redir", "&>"})
			i++
		case c == '>':
			fd := ""
			if inWord && (word.String() == "1" || word.String() == "2") {
				fd = word.String()
				word.Reset()
				inWord = false
			}
			flush()
			op := fd + ">"
			if next == '>' {
				op += ">"
				i++
			} else if next == '&' && i+2 < len(runes) && (runes[i+2] == '1' || runes[i+2] == '2') {
				op += "&" + string(runes[i+2])
				i += 2
			}
			if op == "1>" || op == "1>>" {
				op = op[1:]
			}
			tokens = append(tokens, token{"redir", op})
		case c == '|' || c == '&' || c == '<' || c == '`' || c == '(' || c == ')':
			return nil, fmt.Errorf("'%c' is not simulated (only ; && || and > >> 2> 2>&1 redirections)", c)
		case c == '\\':
			inWord = true
			if next == '\n' {
				i++
			} else if next != 0 {
				word.WriteRune(next)
				i++
			}
		case c == '\'':
			inWord = true
			end := strings.IndexRune(string(runes[i+1:]), '\'')
			if end < 0 {
				return nil, errors.New("unterminated quoted string")
			}
			word.WriteString(string(runes[i+1 : i+1+end]))
			i += 1 + end
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(runes); i++ {
				d := runes[i]
				if d == '"' {
					closed = true
					break
				}
				if d == '\\' && i+1 < len(runes) && strings.ContainsRune("\"\\$`\n", runes[i+1]) {
					i++
					if runes[i] != '\n' {
						word.WriteRune(runes[i])
					}
					continue
				}
				if d == '$' {
					if i = expand(i); i < 0 {
						return nil, errors.New("$(...) is not simulated")
					}
					continue
				}
				word.WriteRune(d)
			}
			if !closed {
				return nil, errors.New("unterminated quoted string")
			}
		case c == '$':
			inWord = true
			if i = expand(i); i < 0 {
				return nil, errors.New("$(...) is not simulated")
			}
		default:
			inWord = true
			word.WriteRune(c)
		}
	}
	flush()
	return tokens, nil
}

// run runs a script and returns its exit status; output goes to stdout and stderr unless redirected.
func (sh *shell) run(script string, stdout, stderr io.Writer) int {
	status, err := sh.runScript(script, stdout, stderr)
	var exit exitRequest
	if errors.As(err, &exit) {
		return exit.status
	}
	return status
}

func (sh *shell) runScript(script string, stdout, stderr io.Writer) (int, error) {
	tokens, err := sh.tokenize(script)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", sh.name, err)
		return statusSyntax, nil
	}
	status, connector := 0, ";"
	var command []token
	runOne := func() error {
		if len(command) == 0 {
			return nil
		}
		words := command
		command = nil
		if connector == "&&" && status != 0 || connector == "||" && status == 0 {
			return nil
		}
		var err error
		status, err = sh.simple(words, stdout, stderr)
		return err
	}
	for _, t := range tokens {
		if t.kind == "op" {
			if len(command) == 0 && t.text != ";" {
				fmt.Fprintf(stderr, "%s: syntax error near unexpected token '%s'\n", sh.name, t.text)
				return statusSyntax, nil
			}
			if err := runOne(); err != nil {
				return status, err
			}
			connector = t.text
			continue
		}
		command = append(command, t)
	}
	err = runOne()
	return status, err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// simple runs one command with its redirections.
func (sh *shell) simple(tokens []token, stdout, stderr io.Writer) (int, error) {
	if sh.ctx.Err() != nil { // terminated: nothing more runs
		return statusTerminated, exitRequest{statusTerminated}
	}
	out, errOut := io.WriteCloser(nopCloser{stdout}), io.WriteCloser(nopCloser{stderr})
	var opened []io.Closer
	defer func() {
		for _, f := range opened {
			_ = f.Close()
		}
	}()
	var args []string
	for i := 0; i < len(tokens); i++ {
		t := tokens[i]
		if t.kind == "word" {
			args = append(args, t.text)
			continue
		}
		switch t.text {
		case "2>&1":
			errOut = out
			continue
		case ">&2":
			out = errOut
			continue
		}
		if i+1 >= len(tokens) || tokens[i+1].kind != "word" {
			fmt.Fprintf(stderr, "%s: syntax error: a redirection without a file\n", sh.name)
			return statusSyntax, nil
		}
		i++
		name := tokens[i].text
		target := name
		if !path.IsAbs(target) {
			target = path.Join(sh.cwd, target)
		}
		if path.Clean(target) == "/dev/null" {
			switch t.text {
			case ">", ">>":
				out = nopCloser{io.Discard}
			case "2>", "2>>":
				errOut = nopCloser{io.Discard}
			case "&>":
				out, errOut = nopCloser{io.Discard}, nopCloser{io.Discard}
			}
			continue
		}
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if strings.HasSuffix(t.text, ">>") {
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		f, err := os.OpenFile(sh.fs.host(name, sh.cwd), flags, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "%s: cannot create %s: %s\n", sh.name, name, reason(err))
			return statusSyntax, nil
		}
		opened = append(opened, f)
		switch t.text {
		case ">", ">>":
			out = f
		case "2>", "2>>":
			errOut = f
		case "&>":
			out, errOut = f, f
		}
	}
	if len(args) == 0 {
		return 0, nil
	}
	return sh.command(args, out, errOut)
}

// reason is the words a shell prints for a file error.
func reason(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "No such file or directory"
	case errors.Is(err, os.ErrExist):
		return "File exists"
	case errors.Is(err, os.ErrPermission):
		return "Permission denied"
	}
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		text := pathErr.Err.Error()
		return strings.ToUpper(text[:1]) + text[1:]
	}
	return err.Error()
}

func (sh *shell) command(args []string, out, errOut io.Writer) (int, error) {
	name := programName(args[0])
	if name == "" {
		fmt.Fprintf(errOut, "%s: 1: %s: not found\n", sh.name, args[0])
		return statusNotFound, nil
	}
	args = args[1:]
	switch name {
	case "true":
		return 0, nil
	case "false":
		return 1, nil
	case "exit":
		status := 0
		if len(args) > 0 {
			n, err := strconv.Atoi(args[0])
			if err != nil {
				fmt.Fprintf(errOut, "%s: exit: Illegal number: %s\n", sh.name, args[0])
				return statusSyntax, exitRequest{statusSyntax}
			}
			status = n & 0xff
		}
		return status, exitRequest{status}
	case "echo":
		newline := "\n"
		if len(args) > 0 && args[0] == "-n" {
			newline, args = "", args[1:]
		}
		fmt.Fprint(out, strings.Join(args, " ")+newline)
		return 0, nil
	case "pwd":
		fmt.Fprintln(out, sh.cwd)
		return 0, nil
	case "cd":
		target := "/root"
		if len(args) > 0 {
			target = args[0]
		}
		if !path.IsAbs(target) {
			target = path.Join(sh.cwd, target)
		}
		if info, err := os.Stat(sh.fs.host(target, "/")); err != nil || !info.IsDir() {
			fmt.Fprintf(errOut, "%s: 1: cd: can't cd to %s\n", sh.name, args[0])
			return statusSyntax, nil
		}
		sh.cwd = path.Clean(target)
		return 0, nil
	case "sleep":
		return sh.sleep(args, errOut), nil
	case "test":
		return sh.test(args, errOut), nil
	case "[":
		if len(args) == 0 || args[len(args)-1] != "]" {
			fmt.Fprintf(errOut, "%s: [: missing ]\n", sh.name)
			return statusSyntax, nil
		}
		return sh.test(args[:len(args)-1], errOut), nil
	case "cat":
		return sh.cat(args, out, errOut), nil
	case "touch":
		return sh.touch(args, errOut), nil
	case "grep":
		return sh.grep(args, out, errOut), nil
	case "mkdir":
		return sh.mkdir(args, errOut), nil
	case "rm":
		return sh.rm(args, errOut), nil
	case "sh", "bash":
		return sh.subshell(name, args, out, errOut), nil
	case "vmtoolsd", "vmware-rpctool":
		return sh.toolsRPC(name, args, out, errOut), nil
	}
	return statusNotFound, nil
}

func (sh *shell) subshell(name string, args []string, out, errOut io.Writer) int {
	child := &shell{fs: sh.fs, cwd: sh.cwd, env: sh.env, ctx: sh.ctx, name: name}
	if len(args) == 0 {
		return 0 // no input to read
	}
	if args[0] == "-c" {
		if len(args) < 2 {
			fmt.Fprintf(errOut, "%s: -c: option requires an argument\n", name)
			return statusSyntax
		}
		return child.run(args[1], out, errOut)
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(errOut, "%s: %s: option not simulated\n", name, args[0])
		return statusSyntax
	}
	script, err := os.ReadFile(sh.fs.host(args[0], sh.cwd))
	if err != nil {
		fmt.Fprintf(errOut, "%s: 0: cannot open %s: %s\n", name, args[0], reason(err))
		return statusSyntax
	}
	return child.run(string(script), out, errOut)
}

func (sh *shell) sleep(args []string, errOut io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(errOut, "sleep: missing operand")
		return 1
	}
	seconds, err := strconv.ParseFloat(strings.TrimSuffix(args[0], "s"), 64)
	if err != nil || seconds < 0 {
		fmt.Fprintf(errOut, "sleep: invalid time interval '%s'\n", args[0])
		return 1
	}
	timer := time.NewTimer(time.Duration(seconds * float64(time.Second)))
	defer timer.Stop()
	select {
	case <-timer.C:
		return 0
	case <-sh.ctx.Done():
		return statusTerminated
	}
}

func (sh *shell) test(args []string, errOut io.Writer) int {
	result, err := sh.evaluate(args)
	if err != nil {
		fmt.Fprintf(errOut, "%s: test: %v\n", sh.name, err)
		return statusSyntax
	}
	if result {
		return 0
	}
	return 1
}

func (sh *shell) evaluate(args []string) (bool, error) {
	if len(args) > 0 && args[0] == "!" {
		result, err := sh.evaluate(args[1:])
		return !result, err
	}
	switch len(args) {
	case 0:
		return false, nil
	case 1:
		return args[0] != "", nil
	case 2:
		operand := args[1]
		switch args[0] {
		case "-n":
			return operand != "", nil
		case "-z":
			return operand == "", nil
		}
		info, err := os.Stat(sh.fs.host(operand, sh.cwd))
		switch args[0] {
		case "-e", "-r", "-w":
			return err == nil, nil
		case "-f":
			return err == nil && info.Mode().IsRegular(), nil
		case "-d":
			return err == nil && info.IsDir(), nil
		case "-s":
			return err == nil && info.Size() > 0, nil
		case "-x":
			return err == nil && (info.IsDir() || info.Mode()&0o111 != 0), nil
		}
		return false, fmt.Errorf("%s: unexpected operator", args[0])
	case 3:
		left, op, right := args[0], args[1], args[2]
		switch op {
		case "=", "==":
			return left == right, nil
		case "!=":
			return left != right, nil
		}
		l, lerr := strconv.Atoi(left)
		r, rerr := strconv.Atoi(right)
		if lerr != nil || rerr != nil {
			return false, fmt.Errorf("Illegal number: %s %s", left, right)
		}
		switch op {
		case "-eq":
			return l == r, nil
		case "-ne":
			return l != r, nil
		case "-lt":
			return l < r, nil
		case "-le":
			return l <= r, nil
		case "-gt":
			return l > r, nil
		case "-ge":
			return l >= r, nil
		}
		return false, fmt.Errorf("%s: unexpected operator", op)
	}
	return false, errors.New("too many arguments (-a and -o are not simulated)")
}

func (sh *shell) cat(args []string, out, errOut io.Writer) int {
	status := 0
	for _, name := range args {
		data, err := os.ReadFile(sh.fs.host(name, sh.cwd))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(errOut, "cat: %s: No such file or directory\n", name)
			} else {
				fmt.Fprintf(errOut, "cat: %s: %s\n", name, reason(err))
			}
			status = 1
			continue
		}
		_, _ = out.Write(data)
	}
	return status
}

func (sh *shell) touch(args []string, errOut io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(errOut, "touch: missing file operand")
		return 1
	}
	status := 0
	for _, name := range args {
		host := sh.fs.host(name, sh.cwd)
		now := time.Now()
		if err := os.Chtimes(host, now, now); err == nil {
			continue
		}
		f, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintf(errOut, "touch: cannot touch '%s': %s\n", name, reason(err))
			status = 1
			continue
		}
		_ = f.Close()
	}
	return status
}

func (sh *shell) mkdir(args []string, errOut io.Writer) int {
	parents := false
	if len(args) > 0 && args[0] == "-p" {
		parents, args = true, args[1:]
	}
	status := 0
	for _, name := range args {
		host := sh.fs.host(name, sh.cwd)
		var err error
		if parents {
			err = os.MkdirAll(host, 0o755)
		} else {
			err = os.Mkdir(host, 0o755)
		}
		if err != nil {
			fmt.Fprintf(errOut, "mkdir: cannot create directory '%s': %s\n", name, reason(err))
			status = 1
		}
	}
	return status
}

func (sh *shell) rm(args []string, errOut io.Writer) int {
	force := false
	if len(args) > 0 && args[0] == "-f" {
		force, args = true, args[1:]
	}
	status := 0
	for _, name := range args {
		host := sh.fs.host(name, sh.cwd)
		if host == sh.fs.root {
			fmt.Fprintf(errOut, "rm: it is dangerous to operate recursively on '/'\n")
			status = 1
			continue
		}
		info, err := os.Stat(host)
		if err == nil && info.IsDir() {
			fmt.Fprintf(errOut, "rm: cannot remove '%s': Is a directory\n", name)
			status = 1
			continue
		}
		if err := os.Remove(host); err != nil && !(force && errors.Is(err, os.ErrNotExist)) {
			fmt.Fprintf(errOut, "rm: cannot remove '%s': %s\n", name, reason(err))
			status = 1
		}
	}
	return status
}

func (sh *shell) grep(args []string, out, errOut io.Writer) int {
	var quiet, ignoreCase, invert, fixed, count bool
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && len(args[0]) > 1 {
		flag := args[0]
		args = args[1:]
		if flag == "--" {
			break
		}
		if flag == "-e" && len(args) > 0 {
			break
		}
		for _, f := range flag[1:] {
			switch f {
			case 'q', 's':
				quiet = quiet || f == 'q'
			case 'i':
				ignoreCase = true
			case 'v':
				invert = true
			case 'F':
				fixed = true
			case 'E':
			case 'c':
				count = true
			default:
				fmt.Fprintf(errOut, "grep: invalid option -- '%c' (not simulated)\n", f)
				return 2
			}
		}
	}
	if len(args) == 0 {
		fmt.Fprintln(errOut, "Usage: grep [OPTION]... PATTERNS [FILE]...")
		return 2
	}
	pattern := args[0]
	if fixed {
		pattern = regexp.QuoteMeta(pattern)
	}
	if ignoreCase {
		pattern = "(?i)" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		fmt.Fprintf(errOut, "grep: %v\n", err)
		return 2
	}
	files := args[1:]
	status := 1
	failed := false
	for _, name := range files {
		data, err := os.ReadFile(sh.fs.host(name, sh.cwd))
		if err != nil {
			fmt.Fprintf(errOut, "grep: %s: %s\n", name, reason(err))
			failed = true
			continue
		}
		matches := 0
		scanner := bufio.NewScanner(bytes.NewReader(data))
		scanner.Buffer(make([]byte, 64*1024), 16*1024*1024)
		for scanner.Scan() {
			line := scanner.Text()
			if re.MatchString(line) == invert {
				continue
			}
			matches++
			status = 0
			if quiet {
				return 0
			}
			if !count {
				if len(files) > 1 {
					fmt.Fprintf(out, "%s:", name)
				}
				fmt.Fprintln(out, line)
			}
		}
		if count && !quiet {
			if len(files) > 1 {
				fmt.Fprintf(out, "%s:", name)
			}
			fmt.Fprintln(out, matches)
		}
	}
	if failed && status != 0 {
		return 2
	}
	return status
}

// shellQuote quotes a word for the script line a program path and its arguments make.
func shellQuote(word string) string {
	if word != "" && !strings.ContainsAny(word, " \t\n'\"\\$;&|<>()#`*?") {
		return word
	}
	return "'" + strings.ReplaceAll(word, "'", `'\''`) + "'"
}
