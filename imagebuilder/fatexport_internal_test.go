package imagebuilder

// FixDirLongNames is fixDirLongNames, for the tests of package
// imagebuilder_test, which decode long names without this package's code.
var FixDirLongNames = fixDirLongNames
