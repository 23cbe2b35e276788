package envelope

// The two decoding paths of UnmarshalCloudEvent, for the test that holds
// them to each other.
var (
	UnmarshalOwnForTest = unmarshalOwn
	UnmarshalSDKForTest = unmarshalSDK
)

// The two encoding paths of MarshalCloudEvent.
var (
	MarshalOwnForTest = marshalOwn
	MarshalSDKForTest = marshalSDK
)
