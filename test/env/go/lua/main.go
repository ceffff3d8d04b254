// Command lua runs an Argo CD resource health check (a Lua script) against
// Kubernetes objects the way Argo CD does: in gopher-lua, the Lua VM Argo CD
// embeds, with the libraries Argo CD opens for a health check configured in
// argocd-cm (useOpenLibs unset), the object as the global `obj`, a 1 s deadline,
// and the returned table read as {status, message}.
//
// Usage: lua health SCRIPT < objects.json
//
// stdin holds a JSON array of objects; stdout gets a JSON array with one entry
// per object: {"status": ..., "message": ...} or {"error": ...}.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// The statuses Argo CD accepts from a health script; any other becomes Unknown.
var validStatus = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

func main() {
	if len(os.Args) != 3 || os.Args[1] != "health" {
		fmt.Fprintln(os.Stderr, "usage: lua health SCRIPT < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[2])
	if err != nil {
		fail("reading the script: %v", err)
	}
	var objects []any
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fail("reading the objects (a JSON array) from stdin: %v", err)
	}
	results := make([]result, 0, len(objects))
	for _, obj := range objects {
		results = append(results, health(string(script), obj))
	}
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)
	if err := out.Encode(results); err != nil {
		fail("writing the results: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "lua: "+format+"\n", args...)
	os.Exit(1)
}

// health runs the script once for one object, in a fresh VM.
func health(script string, obj any) result {
	L := newSandbox()
	defer L.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return result{Error: err.Error()}
	}
	ret := L.Get(-1)
	table, ok := ret.(*lua.LTable)
	if !ok {
		return result{Error: fmt.Sprintf("expect table output from Lua script, not %s", ret.Type())}
	}
	status, err := stringField(table, "status")
	if err != nil {
		return result{Error: err.Error()}
	}
	message, err := stringField(table, "message")
	if err != nil {
		return result{Error: err.Error()}
	}
	if !validStatus[status] {
		return result{Status: "Unknown", Message: "Lua returned an invalid health status"}
	}
	return result{Status: status, Message: message}
}

// newSandbox opens what Argo CD opens when a health check does not ask for the
// standard libraries: package, the base functions, table, and `require("os")`
// with only time and date. No string, math, io or os globals: a script that
// calls string.format fails there, and so it fails here.
func newSandbox() *lua.LState {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			fail("opening the Lua library %q: %v", lib.name, err)
		}
	}
	L.PreloadModule(lua.OsLibName, safeOs)
	return L
}

// safeOs is the module `require("os")` returns: gopher-lua's own os.time and
// os.date, nothing that touches files, processes or the environment.
func safeOs(L *lua.LState) int {
	L.Push(L.NewFunction(lua.OpenOs))
	L.Push(lua.LString(lua.OsLibName))
	L.Call(1, 1)
	full, ok := L.Get(-1).(*lua.LTable)
	L.Pop(1)
	// OpenOs also set the global os; Argo CD has none.
	L.SetGlobal(lua.OsLibName, lua.LNil)
	mod := L.NewTable()
	if ok {
		for _, name := range []string{"time", "date"} {
			mod.RawSetString(name, full.RawGetString(name))
		}
	}
	L.Push(mod)
	return 1
}

// toLua converts a decoded JSON value as Argo CD converts an unstructured
// object: numbers to Lua numbers, arrays to sequences, objects to tables, and
// null to nil (so a null field reads as absent).
func toLua(L *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		arr := L.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(toLua(L, item))
		}
		return arr
	case map[string]any:
		tbl := L.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), toLua(L, item))
		}
		return tbl
	default:
		return lua.LNil
	}
}

// stringField reads a field Argo CD decodes into a Go string: absent is "", a
// string is itself, anything else is an error as in Argo CD's JSON decoding.
func stringField(t *lua.LTable, name string) (string, error) {
	switch v := t.RawGetString(name).(type) {
	case *lua.LNilType:
		return "", nil
	case lua.LString:
		return string(v), nil
	default:
		return "", fmt.Errorf("the health status field %q is a Lua %s, not a string", name, v.Type())
	}
}
